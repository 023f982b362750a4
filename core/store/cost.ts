// A monthly storage cost estimate from the bytes in each S3 storage class, at named list prices
// (us-east-1, first 50 TB tier, per GB-month, as published by AWS in 2026; other regions differ).
// Request, retrieval and minimum-duration charges are left out: this is the storage line only.
export const STORAGE_PRICES_USD_PER_GB_MONTH: Record<string, number> = {
  STANDARD: 0.023,
  INTELLIGENT_TIERING: 0.0125, // the infrequent access tier an idle blob reaches after 30 days (frequent: 0.023)
  STANDARD_IA: 0.0125,
  ONEZONE_IA: 0.01,
  GLACIER_IR: 0.004,
  GLACIER: 0.0036,
  DEEP_ARCHIVE: 0.00099,
};
export const PRICE_SOURCE = 'S3 list prices, us-east-1, per GB-month (Intelligent-Tiering at its infrequent tier)';

export interface StorageClassCost {
  storageClass: string;
  bytes: number;
  usdPerGbMonth: number | null;
  monthlyUsd: number | null;
}

const GB = 1024 ** 3;

export function storageCost(bytesByClass: ReadonlyMap<string, number>): { classes: StorageClassCost[]; monthlyUsd: number } {
  const classes = [...bytesByClass]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([storageClass, bytes]) => {
      const price = STORAGE_PRICES_USD_PER_GB_MONTH[storageClass];
      return { storageClass, bytes, usdPerGbMonth: price ?? null, monthlyUsd: price === undefined ? null : (bytes / GB) * price };
    });
  return { classes, monthlyUsd: classes.reduce((sum, c) => sum + (c.monthlyUsd ?? 0), 0) };
}
