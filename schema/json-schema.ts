// The execution input as JSON Schema, generated from the zod contract (`npm run --silent schema` prints it).
// The README embeds this output; test/readme.test.ts keeps the two equal.
import { z } from 'zod';
import { ExecutionInput } from './contract.ts';

export function executionInputJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ExecutionInput, { io: 'input', unrepresentable: 'any' });
  // zod spells out its ISO 8601 regex; `format: date-time` says the same to a reader and a validator.
  const asOf = schema.properties?.asOf;
  if (asOf && typeof asOf === 'object') delete asOf.pattern;
  return schema as Record<string, unknown>;
}
