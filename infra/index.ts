// The package export `ecr-backup/infra`: the construct and the types of its props, for another CDK app.
export { EcrBackup } from './ecr-backup.ts';
export type { Dashboard, EcrBackupDashboard } from './dashboard.ts';
export type { BlobStorageClass, EcrBackupObjectLock, EcrBackupProps, EcrBackupPrune, EcrBackupSchedule, ImageFormat } from './props.ts';
export type { EcrBackupPushBackups, PushBackups } from './push-backups.ts';
export type { EcrBackupRestoreDrill, RestoreDrill } from './restore-drill.ts';
export type { EcrBackupReplica, StoreReplica } from './store-replica.ts';
