// The README is the front door; these checks keep the parts of it that mirror code from drifting.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { executionInputJsonSchema } from '../schema/json-schema.ts';
import { constructPropsMarkdown } from '../scripts/props-doc.ts';

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('embeds the execution input JSON Schema exactly as the zod contract generates it', () => {
    const block = /<!-- execution-input-schema:start -->\s*```json\n([\s\S]*?)```\s*<!-- execution-input-schema:end -->/.exec(readme);
    expect(block, 'schema block markers').not.toBeNull();
    expect(JSON.parse(block![1]!)).toEqual(executionInputJsonSchema());
  });

  it('embeds the construct props tables exactly as `npm run props` generates them from the TSDoc in infra/', () => {
    const block = /<!-- construct-props:start -->\n([\s\S]*?)<!-- construct-props:end -->/.exec(readme);
    expect(block, 'props block markers').not.toBeNull();
    expect(block![1], 'the props or their comments changed: paste `npm run --silent props` between the markers').toBe(
      constructPropsMarkdown(),
    );
  });
});
