// What schema tooling sees: the schema built from a live introspection
// result prints the same as schema.graphqls, descriptions included.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  buildClientSchema, buildSchema, getIntrospectionQuery, GraphQLSchema, lexicographicSortSchema, printSchema,
} from 'graphql';
import { repoRoot, startGatehouse } from './lib/gatehouse.mjs';

let gatehouse;
before(async () => { gatehouse = await startGatehouse(); });
after(async () => { await gatehouse?.stop(); });

async function introspect(options) {
  const res = await fetch(gatehouse.api, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query: getIntrospectionQuery(options) }),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

// gqlgen declares @defer in every schema it serves (its executor supports
// incremental delivery), so introspection reports it although
// schema.graphqls does not declare it. It is the only addition allowed, and
// only with gqlgen's exact definition.
const gqlgenDefer = `"""
Directs the executor to defer this fragment when the \`if\` argument is true or undefined.
"""
directive @defer(
  """Deferred when true or undefined."""
  if: Boolean = true

  """Unique name"""
  label: String
) on FRAGMENT_SPREAD | INLINE_FRAGMENT`;

function withoutDefer(schema) {
  const config = schema.toConfig();
  const defer = config.directives.find((d) => d.name === 'defer');
  assert.ok(defer, 'gqlgen reports @defer; if that changed, drop this allowance');
  assert.equal(printSchema(new GraphQLSchema({ directives: [defer] })).trim(), gqlgenDefer);
  return new GraphQLSchema({ ...config, directives: config.directives.filter((d) => d !== defer) });
}

test('introspection prints the same schema as schema.graphqls', async () => {
  const result = await introspect({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true,
    inputValueDeprecation: true });
  const live = withoutDefer(buildClientSchema(result));
  const file = buildSchema(readFileSync(join(repoRoot, 'schema.graphqls'), 'utf8'));
  // Introspection lists types and fields in gqlgen's order, not the file's;
  // order means nothing in GraphQL, so both sides are sorted.
  assert.equal(printSchema(lexicographicSortSchema(live)), printSchema(lexicographicSortSchema(file)));
});

test('every type and field a client sees has a description', async () => {
  const schema = buildClientSchema(await introspect({ descriptions: true }));
  const missing = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || ['String', 'Boolean', 'Int', 'Float', 'ID'].includes(type.name)) continue;
    if (!type.description && !['Query', 'Mutation'].includes(type.name)) missing.push(type.name);
    for (const field of Object.values(type.getFields?.() ?? {})) {
      if (!field.description) missing.push(`${type.name}.${field.name}`);
    }
  }
  assert.deepEqual(missing, []);
});
