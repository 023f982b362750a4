// The repository settings a backup records under `catalog/<repo>/_settings/` and a restore applies:
// a stored contract, read back from the store and validated with this schema.
import { z } from 'zod';

export const RepositorySettings = z.object({
  /** MUTABLE, IMMUTABLE, or one of the *_WITH_EXCLUSION variants (with exclusion filters). */
  imageTagMutability: z.string().min(1),
  imageTagMutabilityExclusionFilters: z.array(z.object({ filterType: z.string().min(1), filter: z.string() })).optional(),
  scanOnPush: z.boolean(),
  encryption: z.object({
    /** AES256, KMS or KMS_DSSE. */
    type: z.string().min(1),
    /** The key ARN for the KMS types (ECR reports the AWS managed key's ARN when no key was chosen). */
    kmsKey: z.string().optional(),
  }),
  /** Policy texts exactly as ECR returned them; absent when the repository has none. */
  lifecyclePolicy: z.string().optional(),
  repositoryPolicy: z.string().optional(),
  /** Resource tags, key -> value. */
  tags: z.record(z.string(), z.string()),
});
export type RepositorySettings = z.infer<typeof RepositorySettings>;
