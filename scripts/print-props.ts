// Prints the README's construct props tables (generated from the TSDoc in infra/; see props-doc.ts).
import { constructPropsMarkdown } from './props-doc.ts';

process.stdout.write(constructPropsMarkdown());
