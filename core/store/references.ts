// What an image references in the store: the walk from a root manifest through index children to
// configs and layers. `prune` marks with it and `stats` sizes with it. Each manifest is read and
// checked against its digest once per walker, however many images share it.
import { blobsOf, childManifests } from '../model/manifest.ts';
import { createLimiter, type Limiter } from '../limiter.ts';
import { blobKey } from './layout.ts';
import type { ObjectStore } from './object-store.ts';
import { readStoredManifest } from './stored-manifest.ts';
import { errorText } from '../redact.ts';

export interface TreeProblem {
  /** The manifest that could not be used. */
  digest: string;
  problem: 'missing' | 'corrupt' | 'unreadable';
  detail: string;
}

interface ManifestNode {
  size: number;
  children: { digest: string; mediaType?: string }[];
  blobs: { digest: string; size: number }[];
}

type NodeResult = { ok: true; node: ManifestNode } | { ok: false; problem: TreeProblem };

export interface ImageTree {
  /** Every digest the image needs, root manifest included: digest -> size in bytes. */
  refs: Map<string, number>;
  /** Manifests that are missing or bad; what they reference is absent from `refs`. */
  problems: TreeProblem[];
}

export class ReferenceWalker {
  private readonly nodes = new Map<string, Promise<NodeResult>>();
  private readonly limit: Limiter;

  constructor(
    private readonly objects: ObjectStore,
    concurrency = 16,
  ) {
    this.limit = createLimiter(concurrency);
  }

  /** The manifest tree of one image. Never throws for a store problem: it lands in `problems`. */
  async tree(root: { digest: string; mediaType?: string }): Promise<ImageTree> {
    const refs = new Map<string, number>();
    const problems: TreeProblem[] = [];
    const seen = new Set<string>();
    const visit = async (d: { digest: string; mediaType?: string }): Promise<void> => {
      if (seen.has(d.digest)) return;
      seen.add(d.digest);
      const result = await this.node(d);
      if (!result.ok) {
        problems.push(result.problem);
        return;
      }
      refs.set(d.digest, result.node.size);
      for (const blob of result.node.blobs) refs.set(blob.digest, blob.size);
      await Promise.all(result.node.children.map(visit));
    };
    await visit(root);
    return { refs, problems };
  }

  /**
   * What one blob references directly when it is a manifest: `manifest` with its children and blobs,
   * `other` when it is not a manifest (a layer, a config, damaged bytes), `missing`, or `unreadable`
   * (the read failed: whether it is a manifest is unknown).
   */
  async classify(digest: string): Promise<{ kind: 'manifest'; refs: string[] } | { kind: 'other' | 'missing' | 'unreadable' }> {
    const result = await this.node({ digest });
    if (result.ok)
      return { kind: 'manifest', refs: [...result.node.children.map((c) => c.digest), ...result.node.blobs.map((b) => b.digest)] };
    return { kind: result.problem.problem === 'corrupt' ? 'other' : result.problem.problem };
  }

  private node(d: { digest: string; mediaType?: string }): Promise<NodeResult> {
    let node = this.nodes.get(d.digest);
    if (!node) {
      // Only the read holds a slot; the recursion in tree() waits outside the limiter.
      node = this.limit(async (): Promise<NodeResult> => {
        // No mediaType: the bytes decide what the manifest is, never a record's or an index's claim
        // about it: a lying mediaType must not hide what an image references from prune.
        const read = await readStoredManifest(this.objects, { digest: d.digest });
        if (!read.ok) {
          const detail = read.problem === 'missing' ? `manifest ${blobKey(d.digest)} is not in the store` : errorText(read.error);
          return { ok: false, problem: { digest: d.digest, problem: read.problem, detail } };
        }
        const { manifest } = read;
        // manifestFromBytes infers a type from the shape, so an image config parses too: a real
        // manifest names everything it references by digest.
        if (![...childManifests(manifest), ...blobsOf(manifest)].every((r) => typeof r?.digest === 'string' && r.digest.includes(':'))) {
          const detail = `${blobKey(d.digest)} is not a manifest (a reference without a digest)`;
          return { ok: false, problem: { digest: d.digest, problem: 'corrupt', detail } };
        }
        return {
          ok: true,
          node: {
            size: manifest.bytes.byteLength,
            children: childManifests(manifest).map((c) => ({ digest: c.digest, mediaType: c.mediaType })),
            blobs: blobsOf(manifest).map((b) => ({ digest: b.digest, size: b.size })),
          },
        };
      });
      this.nodes.set(d.digest, node);
    }
    return node;
  }
}
