// Generates src/gql/ (TypeScript types for the app's operations) from the
// schema of a live gatehouse, read by introspection. With --check it
// generates in memory and fails if the committed files differ.
//
//   npm run codegen          # regenerate and write src/gql/
//   npm run codegen:check    # exit 1 when src/gql/ is stale
import { generate } from '@graphql-codegen/cli';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spaDir, startGatehouse } from '../test/lib/gatehouse.mjs';

const check = process.argv.includes('--check');
const outDir = join(spaDir, 'src/gql');

const gatehouse = await startGatehouse();
let stale = [];
try {
  const outputs = await generate({
    cwd: spaDir,
    schema: gatehouse.api, // introspection over HTTP, through codegen's URL loader
    documents: ['src/**/*.{ts,tsx}', '!src/gql/**'],
    ignoreNoDocuments: false,
    silent: true,
    generates: {
      'src/gql/': {
        preset: 'client',
        presetConfig: { fragmentMasking: false },
        config: {
          scalars: { Time: 'string', JSONObject: 'Record<string, unknown>' },
          strictScalars: true,
          useTypeImports: true,
          enumsAsTypes: true,
        },
      },
    },
  }, !check);
  if (check) {
    const want = new Map(outputs.map((o) => [relative(spaDir, o.filename), o.content]));
    for (const [file, content] of want) {
      const path = join(spaDir, file);
      if (!existsSync(path) || readFileSync(path, 'utf8') !== content) stale.push(file);
    }
    for (const name of existsSync(outDir) ? readdirSync(outDir) : []) {
      const file = relative(spaDir, join(outDir, name));
      if (!want.has(file)) stale.push(`${file} (not generated any more)`);
    }
  } else {
    for (const o of outputs) console.log(`wrote ${relative(spaDir, o.filename)}`);
  }
} finally {
  await gatehouse.stop();
}
if (stale.length > 0) {
  console.error(`generated types are stale (schema or operations changed): ${stale.join(', ')}\n` +
    'run "npm run codegen" in examples/spa and commit the result');
  process.exit(1);
}
if (check) console.log('generated types match the live schema and the operations');
