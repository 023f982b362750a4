// The retention rule prune applies (core/store/retention.ts says what it keeps). One check serves
// every place a rule enters: the CLI flags, the construct's `prune` prop, the prune Lambda's
// environment and pruneStore itself.
export interface RetentionRule {
  /** Per tag, keep the N newest values (N >= 1; repeated records of one value count once). */
  keepLast?: number;
  /** Keep records newer than D days, and per tag the value it had D days ago. */
  keepDays?: number;
}

/** Why the rule cannot be applied, or undefined when it can. */
export function retentionRuleProblem(rule: RetentionRule): string | undefined {
  const { keepLast, keepDays } = rule;
  if (keepLast === undefined && keepDays === undefined)
    return 'a retention rule needs keepLast (--keep-last N) or keepDays (--keep-days D)';
  if (keepLast !== undefined && !(Number.isInteger(keepLast) && keepLast >= 1)) return `keep-last must be an integer >= 1, got ${keepLast}`;
  if (keepDays !== undefined && !(Number.isFinite(keepDays) && keepDays > 0)) return `keep-days must be a number > 0, got ${keepDays}`;
  return undefined;
}
