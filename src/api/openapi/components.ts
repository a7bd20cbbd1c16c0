// fastify-type-provider-zod writes every registered schema twice, `X` for responses and `XInput`
// for requests (zod's io modes), whether or not it is used that way; zod has no option to merge
// them. Here the document keeps one component per schema: an `XInput` identical to `X` gives way
// to it, components no operation reaches are dropped, and an `XInput` left alone takes the name
// `X`. Only a schema used both ways with different JSON keeps both names.
import { isDeepStrictEqual } from 'node:util';

type Json = unknown;
type Document = { paths?: Json; components?: { schemas?: Record<string, Json> } };

const REF = '#/components/schemas/';

/** Every component name a piece of the document refers to. */
function refsIn(value: Json, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) refsIn(v, found);
  else if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string' && v.startsWith(REF)) found.add(v.slice(REF.length));
      else refsIn(v, found);
    }
  }
  return found;
}

function renameRefs(value: Json, names: ReadonlyMap<string, string>): Json {
  if (Array.isArray(value)) return value.map((v) => renameRefs(v, names));
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => {
      if (key === '$ref' && typeof v === 'string' && v.startsWith(REF)) {
        const to = names.get(v.slice(REF.length));
        return [key, to ? REF + to : v];
      }
      return [key, renameRefs(v, names)];
    }),
  );
}

/** Components reachable from the paths, following references between components. */
function reachable(paths: Json, schemas: Record<string, Json>): Set<string> {
  const seen = new Set<string>();
  const queue = [...refsIn(paths)];
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (seen.has(name) || !(name in schemas)) continue;
    seen.add(name);
    queue.push(...refsIn(schemas[name]));
  }
  return seen;
}

export function mergeIoComponents<D extends Document>(document: D): D {
  const schemas = document.components?.schemas;
  if (!schemas) return document;
  const renames = new Map<string, string>();
  for (const name of Object.keys(schemas)) {
    const base = name.endsWith('Input') ? name.slice(0, -'Input'.length) : undefined;
    if (base && base in schemas && isDeepStrictEqual(schemas[name], schemas[base])) renames.set(name, base);
  }
  let paths = renameRefs(document.paths, renames);
  let kept = Object.fromEntries(Object.entries(schemas).filter(([name]) => !renames.has(name)));
  kept = renameRefs(kept, renames) as Record<string, Json>;

  const used = reachable(paths, kept);
  kept = Object.fromEntries(Object.entries(kept).filter(([name]) => used.has(name)));

  const alone = new Map<string, string>();
  for (const name of Object.keys(kept)) {
    const base = name.endsWith('Input') ? name.slice(0, -'Input'.length) : undefined;
    if (base && !(base in kept)) alone.set(name, base);
  }
  paths = renameRefs(paths, alone);
  kept = Object.fromEntries(Object.entries(renameRefs(kept, alone) as Record<string, Json>).map(([name, s]) => [alone.get(name) ?? name, s]));
  return { ...document, paths, components: { ...document.components, schemas: kept } };
}
