// Writes the app's runtime config.json, which says where gatehouse is, next
// to the built files, so one build serves any deployment:
//
//   npm run config -- https://auth.example.com/query            # dist/config.json
//   npm run config -- https://auth.example.com/query --out /srv/app/config.json
//   GATEHOUSE_API_URL=https://auth.example.com/query npm run config
//
// Without a config.json the app uses http://localhost:8080/query.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spaDir } from '../test/lib/gatehouse.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { out: { type: 'string', default: join(spaDir, 'dist', 'config.json') } },
});
const url = positionals[0] ?? process.env.GATEHOUSE_API_URL;
if (!url || !/^https?:\/\/[^/]/.test(url) || positionals.length > 1) {
  console.error('usage: npm run config -- <http(s) URL of gatehouse\'s /query> [--out dist/config.json]\n' +
    '(or set GATEHOUSE_API_URL); got ' + JSON.stringify(positionals.length ? positionals : url ?? null));
  process.exit(2);
}
writeFileSync(values.out, JSON.stringify({ graphqlURL: url }) + '\n');
console.log(`${values.out}: {"graphqlURL": "${url}"}`);
