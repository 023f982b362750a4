// The backup store: ObjectStore backends (S3, a directory), the image layout on top of them, and
// verification. See layout.ts for the key layout.
export * from './object-store.ts';
export { FileSystemObjectStore } from './filesystem.ts';
export { S3ObjectStore, createS3Client, InvalidBucketError, type S3ObjectStoreOptions, type S3ClientOptions } from './s3.ts';
export { openStore, openBackupStore, StoreUrlError, type OpenStoreOptions } from './url.ts';
export * from './layout.ts';
export * from './backup-store.ts';
export * from './verify.ts';
