// The README is the front door; these checks keep the parts of it that mirror code from drifting.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { executionInputJsonSchema } from '../schema/json-schema.ts';

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('embeds the execution input JSON Schema exactly as the zod contract generates it', () => {
    const block = /<!-- execution-input-schema:start -->\s*```json\n([\s\S]*?)```\s*<!-- execution-input-schema:end -->/.exec(readme);
    expect(block, 'schema block markers').not.toBeNull();
    expect(JSON.parse(block![1]!)).toEqual(executionInputJsonSchema());
  });
});
