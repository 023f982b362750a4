// Glob filters used by the CLI and the execution input: `*` matches within one path segment, `**`
// across segments, `?` one character. Repository names use `/` as the segment separator.
//
// Matching simulates the pattern as a set of positions (a Thompson NFA): every character of the name
// advances every live position once, so a match costs O(name x glob) whatever the glob. A glob
// compiled to a backtracking RegExp (`a*a*a*...b`) took seconds on a 40-character tag, and the
// execution input accepts globs from whoever may start an execution.
type Token = { kind: 'char'; char: string } | { kind: 'one' } | { kind: 'star' } | { kind: 'globstar' };

function tokenize(glob: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      const globstar = glob[i + 1] === '*';
      if (globstar) i++;
      while (glob[i + 1] === '*') i++; // `***` is `**`: a run of stars adds nothing
      tokens.push({ kind: globstar ? 'globstar' : 'star' });
    } else if (ch === '?') tokens.push({ kind: 'one' });
    else tokens.push({ kind: 'char', char: ch });
  }
  return tokens;
}

/** True when `name` matches `glob` as a whole. */
export function matchGlob(glob: string, name: string): boolean {
  const tokens = tokenize(glob);
  const end = tokens.length;
  let live = new Uint8Array(end + 1);
  // Stars match the empty string: a position on a star also stands on the token after it.
  const close = (set: Uint8Array) => {
    for (let i = 0; i < end; i++) if (set[i] && tokens[i]!.kind !== 'char' && tokens[i]!.kind !== 'one') set[i + 1] = 1;
  };
  live[0] = 1;
  close(live);
  for (const ch of name) {
    const next = new Uint8Array(end + 1);
    let any = false;
    for (let i = 0; i < end; i++) {
      if (!live[i]) continue;
      const t = tokens[i]!;
      if (t.kind === 'globstar' || (t.kind === 'star' && ch !== '/')) next[i] = 1;
      else if ((t.kind === 'one' && ch !== '/') || (t.kind === 'char' && t.char === ch)) next[i + 1] = 1;
      else continue;
      any = true;
    }
    if (!any) return false;
    close(next);
    live = next;
  }
  return live[end] === 1;
}

/** True when `name` matches any of `include` (or include is empty) and none of `exclude`. */
export function matchesFilters(name: string, include: readonly string[] = [], exclude: readonly string[] = []): boolean {
  const included = include.length === 0 || include.some((g) => matchGlob(g, name));
  return included && !exclude.some((g) => matchGlob(g, name));
}
