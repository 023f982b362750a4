// Prints the execution input's JSON Schema (the README embeds this output).
import { executionInputJsonSchema } from '../schema/json-schema.ts';

process.stdout.write(`${JSON.stringify(executionInputJsonSchema(), null, 2)}\n`);
