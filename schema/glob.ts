// Glob filters used by the CLI and the execution input: `*` matches within one path segment, `**`
// across segments, `?` one character. Repository names use `/` as the segment separator.
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        source += '.*';
        i++;
      } else {
        source += '[^/]*';
      }
    } else if (ch === '?') {
      source += '[^/]';
    } else {
      source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}

/** True when `name` matches any of `include` (or include is empty) and none of `exclude`. */
export function matchesFilters(name: string, include: readonly string[] = [], exclude: readonly string[] = []): boolean {
  const included = include.length === 0 || include.some((g) => globToRegExp(g).test(name));
  return included && !exclude.some((g) => globToRegExp(g).test(name));
}
