// The object store beneath a BackupStore, for core/store's own modules (a repository, verify, prune,
// stats) and for tests that damage a store on purpose. Everything else goes through BackupStore's and
// RunFiles' methods: .dependency-cruiser.cjs keeps this module's importers inside core/store, so no
// caller outside it can build a key by hand or bypass the store's checks.
import type { ObjectStore } from './object-store.ts';

export const STORE_OBJECTS: unique symbol = Symbol('ecr-backup store objects');

/** The objects beneath a store (see the file comment for who may ask). */
export function storeObjects(store: { readonly [STORE_OBJECTS]: ObjectStore }): ObjectStore {
  return store[STORE_OBJECTS];
}
