// Paged listings of a registry (catalog and tags): follows `Link: rel=next` within bounds on pages,
// entries and time, so a registry that pages forever fails the listing instead of the run.
import { RegistryError } from './errors.ts';
import { header, type HttpRequest, type HttpResponse } from './http.ts';

export interface ListingLimits {
  maxPages: number;
  maxEntries: number;
  maxDurationMs: number;
}

/** ECR's own caps are 10,000 repositories and 20,000 images per repository; these leave room. */
export const DEFAULT_LISTING_LIMITS: ListingLimits = { maxPages: 10_000, maxEntries: 1_000_000, maxDurationMs: 30 * 60 * 1000 };
const MAX_LISTING_BYTES = 32 * 1024 * 1024;

/** What a listing needs of its endpoint (RegistryEndpoint is one). */
interface ListingTransport {
  fetch(req: HttpRequest, scopes: string[], context: string, limit: number): Promise<{ res: HttpResponse; bytes: Buffer }>;
  resolve(location: string | undefined, base: URL, context: string): URL;
}

/**
 * Follows `Link: <...>; rel="next"` pages, collecting `field` from each JSON page, within the
 * listing limits (pages, entries, time): a registry that never stops paging fails this listing.
 */
export async function paginate(
  endpoint: ListingTransport,
  first: URL,
  scopes: string[],
  context: string,
  field: 'repositories' | 'tags',
  options: { pageSize: number; limits: ListingLimits },
): Promise<string[]> {
  first.searchParams.set('n', String(options.pageSize));
  const items: string[] = [];
  const seen = new Set<string>();
  const { maxPages, maxEntries, maxDurationMs } = options.limits;
  const deadline = Date.now() + maxDurationMs;
  for (let url: URL | undefined = first; url && !seen.has(url.href); ) {
    if (seen.size >= maxPages)
      throw new RegistryError(`${context}: the listing goes on past ${maxPages} pages; refusing to follow it further`);
    if (Date.now() > deadline)
      throw new RegistryError(
        `${context}: the listing took longer than ${Math.round(maxDurationMs / 1000)} s; refusing to follow it further`,
      );
    seen.add(url.href);
    const { res, bytes } = await endpoint.fetch(
      { method: 'GET', url, headers: { accept: 'application/json' } },
      scopes,
      context,
      MAX_LISTING_BYTES,
    );
    let page: Record<string, unknown>;
    try {
      page = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new RegistryError(`${context}: the registry's listing is not JSON`);
    }
    const values = page[field];
    // One at a time: spreading a page of 100k+ entries into push() overflows the call stack.
    if (Array.isArray(values)) {
      for (const v of values) if (typeof v === 'string') items.push(v);
    }
    if (items.length > maxEntries)
      throw new RegistryError(`${context}: the listing has more than ${maxEntries} entries; refusing to hold it`);
    const next = /<([^>]*)>\s*;[^,]*rel="?next"?/.exec(header(res, 'link') ?? '');
    url = next ? endpoint.resolve(next[1], url, context) : undefined;
  }
  return items;
}
