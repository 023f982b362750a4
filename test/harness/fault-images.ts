// The image set of the fault tests (faults.test.ts, kill-interrupted.test.ts): two repositories
// sharing a base layer, a multi-arch index, and one big layer (an S3 multipart upload on backup, a
// chunked upload on restore).
import { pushImage, pushMultiArchIndex, pushSharedBaseTags } from './fixtures.ts';
import type { PushedImage, RegistryTarget } from './fixture-types.ts';

export interface FaultImage {
  repository: string;
  tag: string;
  image: PushedImage;
}

export async function pushFaultImages(
  target: RegistryTarget,
  options: { prefix: string; baseSize: number; uniqueSize: number; bigSize: number; variant: string },
): Promise<{ images: FaultImage[]; baseDigest: string }> {
  const images: FaultImage[] = [];
  let baseDigest = '';
  for (const repository of [`${options.prefix}/a`, `${options.prefix}/b`]) {
    const shared = await pushSharedBaseTags(target, {
      repository,
      tags: ['1'],
      baseSize: options.baseSize,
      uniqueSize: options.uniqueSize,
      variant: options.variant,
    });
    images.push({ repository, tag: '1', image: shared.images[0]! });
    baseDigest = shared.base.digest;
  }
  const multi = `${options.prefix}/multi`;
  images.push({
    repository: multi,
    tag: 'm',
    image: await pushMultiArchIndex(target, { repository: multi, tag: 'm', variant: options.variant }),
  });
  const big = `${options.prefix}/big`;
  images.push({
    repository: big,
    tag: 'b',
    image: await pushImage(target, { repository: big, tag: 'b', layerSizes: [options.bigSize], variant: options.variant }),
  });
  return { images, baseDigest };
}
