// The bench's S3 destination in moto: the bucket, a client from the moto environment, and the bytes
// stored under a prefix.
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

export const BUCKET = 'ecr-backup-bench';

export function s3Client(env: Record<string, string>): S3Client {
  return new S3Client({
    endpoint: env.AWS_ENDPOINT_URL,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
}

export async function s3Bytes(client: S3Client, prefix: string): Promise<number> {
  let total = 0;
  let token: string | undefined;
  do {
    const out = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/`, ...(token ? { ContinuationToken: token } : {}) }),
    );
    for (const o of out.Contents ?? []) total += o.Size ?? 0;
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return total;
}
