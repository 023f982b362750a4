// Repository and tag grammar from the OCI distribution spec. Every name that reaches a store key, a
// URL path or a file path is checked against these first, so a hostile tag such as `../../x` or
// `a/b` is refused at the edge instead of escaping the store layout.
const REPOSITORY_PATTERN = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

/** ECR allows repository names of up to 256 characters (the distribution spec sets no lower cap). */
const MAX_REPOSITORY_NAME = 256;

export function isRepositoryName(name: string): boolean {
  return typeof name === 'string' && name.length <= MAX_REPOSITORY_NAME && REPOSITORY_PATTERN.test(name);
}

export function isTag(tag: string): boolean {
  return typeof tag === 'string' && TAG_PATTERN.test(tag);
}

export function isDigest(value: string): boolean {
  return DIGEST_PATTERN.test(value);
}
