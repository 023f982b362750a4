// The three bench workloads (shared base layer, unrelated images, one 1 GB image), their sizes (reduced
// by --quick) and how each is pushed into the registry. Import after TMPDIR is set: fixtures use it.
import { pushImage, pushRandomImages, pushSharedBaseTags } from '../test/harness/fixtures.ts';
import type { TestRegistry } from '../test/harness/registry.ts';
import { type BenchOptions, usage } from './options.ts';
import { mib } from './report.ts';

const MiB = 1024 * 1024;

export interface Pushed {
  images: { repository: string; tag: string }[];
  uniqueBytes: number;
}

export interface Workload {
  id: string;
  title: string;
  repositories: string[];
  speedTarget?: number;
  rssTarget?: boolean;
  push(registry: TestRegistry): Promise<Pushed>;
}

/** The sizes for this run and the workloads --only selects (all by default). */
export function selectWorkloads(options: BenchOptions) {
  const q = options.quick;
  const sizes = {
    tags: 8,
    base: (q ? 20 : 100) * MiB,
    unique: (q ? 2 : 10) * MiB,
    unrelatedCount: 4,
    unrelated: (q ? 10 : 50) * MiB,
    bigLayers: 4,
    bigLayer: (q ? 32 : 256) * MiB,
  };

  const allWorkloads: Workload[] = [
    {
      id: 'shared-base',
      title: `shared-base (${sizes.tags} tags, ${mib(sizes.base)} base + ${mib(sizes.unique)} each)`,
      repositories: ['bench/shared-base'],
      speedTarget: 4,
      async push(registry) {
        const pushed = await pushSharedBaseTags(registry, {
          repository: 'bench/shared-base',
          tags: sizes.tags,
          baseSize: sizes.base,
          uniqueSize: sizes.unique,
        });
        return { images: pushed.images.map((i) => ({ repository: i.repository, tag: i.tag })), uniqueBytes: pushed.blobBytes };
      },
    },
    {
      id: 'unrelated',
      title: `unrelated (${sizes.unrelatedCount} x ${mib(sizes.unrelated)})`,
      repositories: ['bench/unrelated-*'],
      speedTarget: 1.5,
      async push(registry) {
        const pushed = await pushRandomImages(registry, {
          count: sizes.unrelatedCount,
          size: sizes.unrelated,
          repository: (i) => `bench/unrelated-${i}`,
        });
        return {
          images: pushed.map((i) => ({ repository: i.repository, tag: i.tag })),
          uniqueBytes: pushed.reduce((s, i) => s + i.blobBytes, 0),
        };
      },
    },
    {
      id: '1gb',
      title: `1 GB image (${sizes.bigLayers} x ${mib(sizes.bigLayer)} layers)`,
      repositories: ['bench/big'],
      rssTarget: true,
      async push(registry) {
        const pushed = await pushImage(registry, {
          repository: 'bench/big',
          tag: 'latest',
          layerSizes: Array.from({ length: sizes.bigLayers }, () => sizes.bigLayer),
        });
        return { images: [{ repository: pushed.repository, tag: pushed.tag }], uniqueBytes: pushed.blobBytes };
      },
    },
  ];
  const workloads = allWorkloads.filter((w) => !options.only || options.only.includes(w.id));
  if (options.only) for (const id of options.only) if (!workloads.some((w) => w.id === id)) usage(`unknown workload ${id}`);
  return { sizes, workloads };
}
