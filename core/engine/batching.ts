// Groups work items into Fargate-task-sized batches. Items are packed in listing order (a
// repository's tags stay together, so a task's blob deduplication works within a batch), and a
// batch closes when it reaches the byte or the image limit. An image larger than the byte limit
// gets a batch of its own rather than being refused.
import type { WorkItem } from '../../schema/contract.ts';

export interface BatchLimits {
  maxBytes: number;
  maxImages: number;
}

export function batchItems(items: readonly WorkItem[], limits: BatchLimits): WorkItem[][] {
  const batches: WorkItem[][] = [];
  let current: WorkItem[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = item.sizeBytes ?? 0;
    if (current.length > 0 && (current.length >= limits.maxImages || bytes + size > limits.maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
