// The README's construct props tables, generated from the TSDoc of EcrBackupProps (infra/props.ts) and
// of the interfaces its props use (the feature constructs' EcrBackup* interfaces). Syntax only (no
// type checker): each prop's declared type as written, its comment, its `@default`.
// `npm run props` prints them; test/readme.test.ts keeps the README equal to them.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const INFRA = join(import.meta.dirname, '..', 'infra');
const ROOT_INTERFACE = 'EcrBackupProps';

function interfacesOfInfra(): Map<string, { declaration: ts.InterfaceDeclaration; file: ts.SourceFile }> {
  const found = new Map<string, { declaration: ts.InterfaceDeclaration; file: ts.SourceFile }>();
  for (const name of readdirSync(INFRA).filter((f) => f.endsWith('.ts'))) {
    const file = ts.createSourceFile(name, readFileSync(join(INFRA, name), 'utf8'), ts.ScriptTarget.Latest, true);
    for (const statement of file.statements)
      if (ts.isInterfaceDeclaration(statement)) found.set(statement.name.text, { declaration: statement, file });
  }
  return found;
}

/** Names of the types a type node refers to (`EcrBackupSchedule | null` -> EcrBackupSchedule). */
function referencedNames(node: ts.Node): string[] {
  const names: string[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isTypeReferenceNode(n) && ts.isIdentifier(n.typeName)) names.push(n.typeName.text);
    ts.forEachChild(n, visit);
  };
  visit(node);
  return names;
}

const cell = (text: string) => text.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();

/** One table row per prop: name, declared type, default (`required` without `?`), description. */
function table(declaration: ts.InterfaceDeclaration, file: ts.SourceFile): string {
  const rows = ['| prop | type | default | description |', '|---|---|---|---|'];
  for (const member of declaration.members) {
    if (!ts.isPropertySignature(member) || !member.type) continue;
    const name = member.name.getText(file);
    const docs = ts.getJSDocCommentsAndTags(member).filter(ts.isJSDoc);
    const description = docs.map((doc) => ts.getTextOfJSDocComment(doc.comment) ?? '').join(' ');
    if (!description.trim()) throw new Error(`infra: ${declaration.name.text}.${name} has no TSDoc comment`);
    const tag = docs.flatMap((doc) => doc.tags ?? []).find((t) => t.tagName.text === 'default');
    const fallback = member.questionToken ? '' : 'required';
    const defaultText = tag ? (ts.getTextOfJSDocComment(tag.comment) ?? '') : fallback;
    rows.push(`| \`${name}\` | \`${cell(member.type.getText(file))}\` | ${cell(defaultText)} | ${cell(description)} |`);
  }
  return rows.join('\n');
}

/** The tables, EcrBackupProps first, then each interface a prop uses, in the order the props name them. */
export function constructPropsMarkdown(): string {
  const interfaces = interfacesOfInfra();
  const order = [ROOT_INTERFACE];
  for (let i = 0; i < order.length; i++) {
    const { declaration } = interfaces.get(order[i]!)!;
    for (const member of declaration.members) {
      if (!ts.isPropertySignature(member) || !member.type) continue;
      for (const name of referencedNames(member.type)) if (interfaces.has(name) && !order.includes(name)) order.push(name);
    }
  }
  return order
    .map((name) => {
      const { declaration, file } = interfaces.get(name)!;
      return `**\`${name}\`** ([infra/${file.fileName}](infra/${file.fileName}))\n\n${table(declaration, file)}\n`;
    })
    .join('\n');
}
