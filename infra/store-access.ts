// What each role may do in the store bucket, in one place: the areas it reads and writes
// (blobs/, catalog/, runs/, and the docker-archive label areas), and the write-once rule.
//
// Write-once: content under blobs/ and catalog/ is immutable by design (content-addressed blobs, one
// object per record). The store writes it with `If-None-Match: *` (S3 conditional writes), and roles
// that write there get an explicit deny on any PutObject/CompleteMultipartUpload without that header,
// so even a compromised task cannot overwrite history with its own credentials; it can only add.
// CreateMultipartUpload and UploadPart do not accept the header, so they are exempt
// (s3:ObjectCreationOperation is false for them). Deleting is granted to the prune role alone.
import { Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledgeIam5 } from './nag.ts';

const STORE_AREAS = ['blobs/', 'catalog/', 'runs/'] as const;
type StoreArea = (typeof STORE_AREAS)[number];

/** Areas whose objects are never replaced: a write there must be create-if-absent. */
const WRITE_ONCE_AREAS: readonly StoreArea[] = ['blobs/', 'catalog/'];

export interface StoreAccess {
  read: StoreArea[];
  write: StoreArea[];
  /** docker-archive tars under `<label>/`: the backup role writes them, restore and drills read them. */
  archives?: 'read' | 'write';
}

export interface StoreBucket {
  bucket: s3.IBucket;
  /** `''` or `<prefix>/`. */
  prefix: string;
  encryptionKey?: kms.IKey;
  /** The docker-archive labels the workflow may use (the first is the stack's default). */
  archiveLabels: readonly string[];
}

/**
 * Object-level S3 (and KMS) permissions for areas of the store prefix; listings limited to them.
 * `StringLikeIfExists`: S3 checks s3:ListBucket also for a HEAD/GET of a missing key (404 with it,
 * 403 without), and those requests carry no s3:prefix, so a plain StringLike would turn every
 * "not stored yet" into AccessDenied. Listings that name a prefix stay limited to the areas; a
 * listing with no prefix at all reveals key names (never contents) of the store bucket.
 */
export function grantStore(store: StoreBucket, role: iam.IRole, access: StoreAccess): void {
  const { bucket, prefix } = store;
  const areas = [...new Set([...access.read, ...access.write])];
  const archiveObjects = store.archiveLabels.map((label) => bucket.arnForObjects(`${prefix}${label}/*`));
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ListStore',
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
      conditions: { StringLikeIfExists: { 's3:prefix': areas.flatMap((a) => [`${prefix}${a}`, `${prefix}${a}*`]) } },
    }),
  );
  if (access.read.length || access.archives) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadStore',
        actions: ['s3:GetObject'],
        resources: [...access.read.map((a) => bucket.arnForObjects(`${prefix}${a}*`)), ...(access.archives ? archiveObjects : [])],
      }),
    );
  }
  if (access.write.length || access.archives === 'write') {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteStore',
        actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
        resources: [
          ...access.write.map((a) => bucket.arnForObjects(`${prefix}${a}*`)),
          ...(access.archives === 'write' ? archiveObjects : []),
        ],
      }),
    );
  }
  if (access.write.some((a) => WRITE_ONCE_AREAS.includes(a))) denyOverwrites(store, role);
  if (access.archives) acknowledgeArchiveAreas(store, role);
  const writes = access.write.length > 0 || access.archives === 'write';
  if (store.encryptionKey) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'StoreKey',
        actions: writes ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'],
        resources: [store.encryptionKey.keyArn],
      }),
    );
  }
}

/**
 * The write-once rule for a role that may put objects under blobs/ or catalog/ (whatever statement
 * allowed it): a put there without `If-None-Match` is denied. Call once per role.
 */
export function denyOverwrites(store: Pick<StoreBucket, 'bucket' | 'prefix'>, role: iam.IRole): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'DenyStoreOverwrites',
      effect: iam.Effect.DENY,
      actions: ['s3:PutObject'],
      resources: WRITE_ONCE_AREAS.map((a) => store.bucket.arnForObjects(`${store.prefix}${a}*`)),
      conditions: { Null: { 's3:if-none-match': 'true' }, Bool: { 's3:ObjectCreationOperation': 'true' } },
    }),
  );
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** cdk-nag IAM5 for `<prefix><label>/*`: the tars' keys name repositories and tags known at run time. */
function acknowledgeArchiveAreas(store: StoreBucket, role: iam.IRole): void {
  // A label that is a token (the default: the stack's region) appears in the finding as `<AWS::Region>`.
  const labels = store.archiveLabels.map((label) => (Token.isUnresolved(label) ? '<AWS::Region>' : escapeRegExp(label)));
  acknowledgeIam5(role, [
    {
      pattern: new RegExp(`^Resource::<[^>]+\\.Arn>\\/${escapeRegExp(store.prefix)}(${labels.join('|')})\\/\\*$`),
      where: [role],
      reason:
        "docker-archive tars are written under the stack's archive labels only, as <label>/<repository>/<tag>.tar: keys known at run time.",
    },
  ]);
}
