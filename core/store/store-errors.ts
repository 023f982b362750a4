// The backup store's errors, and the report of a catalog record a reader left out.

/** A catalog record a reader left out: invalid, dated in the future, or disagreeing with its key. */
export interface RejectedRecord {
  key: string;
  repository: string;
  tag?: string;
  reason: string;
}

/** An object larger than its reader or writer allows: a record or manifest read into memory, or S3's object limit. */
export class ObjectTooLargeError extends Error {
  override name = 'ObjectTooLargeError';
}

export class ManifestNotFoundError extends Error {
  override name = 'ManifestNotFoundError';
}

/** putManifest refused: the manifest references content the store does not hold. */
export class IncompleteImageError extends Error {
  override name = 'IncompleteImageError';
  constructor(
    readonly digest: string,
    readonly missing: string[],
  ) {
    super(
      `refusing to store manifest ${digest}: ${missing.length} referenced blob(s)/manifest(s) missing from the store: ` +
        missing.slice(0, 5).join(', ') +
        (missing.length > 5 ? `, ... (${missing.length - 5} more)` : ''),
    );
  }
}

export class ReadOnlyStoreError extends Error {
  override name = 'ReadOnlyStoreError';
}
