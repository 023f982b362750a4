// Repository settings: what an ECR repository is besides its images. A backup records them (tag
// mutability, scan on push, encryption, lifecycle policy, repository policy, resource tags) in the
// store; a restore creates a missing repository with them and, for a repository that already exists,
// reports how it differs from the backup without changing it.
//
// Reading: DescribeRepositories (mutability, scan on push, encryption), GetLifecyclePolicy and
// GetRepositoryPolicy (a missing policy is absent, not an error), ListTagsForResource.
// Applying: CreateRepository with mutability, scan on push, encryption and tags in one call, then
// PutLifecyclePolicy and SetRepositoryPolicy unless policies are skipped. Encryption cannot change
// after creation, and a customer managed KMS key rarely exists in another region or account: when
// CreateRepository refuses the recorded key, the repository is created with the AWS managed key of
// the same encryption type, and the outcome says so.
import {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  GetLifecyclePolicyCommand,
  GetRepositoryPolicyCommand,
  ListTagsForResourceCommand,
  PutLifecyclePolicyCommand,
  SetRepositoryPolicyCommand,
  type CreateRepositoryCommandInput,
  type ECRClient,
  type ImageTagMutability,
  type EncryptionType,
  type ImageTagMutabilityExclusionFilterType,
  type Repository,
} from '@aws-sdk/client-ecr';
import type { RepositorySettings } from '../../schema/repository-settings.ts';
import type { DescribedSettings } from '../../schema/listing-shards.ts';
import { diffRepositorySettings, type ApplyOptions, type RepositoryPreparation } from '../model/repository-settings.ts';
import { errorText } from '../redact.ts';

type Client = Pick<ECRClient, 'send'>;

const errorName = (error: unknown) => (error as { name?: unknown })?.name;
/** The SDK error's name before its (redacted) message: `KmsException: ...`. */
const sdkErrorText = (error: unknown) => {
  const name = errorName(error);
  const message = errorText(error);
  return typeof name === 'string' && name !== 'Error' && !message.startsWith(name) ? `${name}: ${message}` : message;
};

/** Reads a repository's settings through the ECR API. Throws the SDK error (RepositoryNotFoundException...). */
export async function readRepositorySettings(client: Client, repositoryName: string, registryId?: string): Promise<RepositorySettings> {
  const described = await client.send(
    new DescribeRepositoriesCommand({ repositoryNames: [repositoryName], ...(registryId ? { registryId } : {}) }),
  );
  const repository = described.repositories?.find((r) => r.repositoryName === repositoryName);
  if (!repository?.repositoryArn)
    throw Object.assign(new Error(`DescribeRepositories did not return ${repositoryName}`), { name: 'RepositoryNotFoundException' });
  return { ...describedSettings(repository), ...(await readPolicySettings(client, repositoryName, repository.repositoryArn, registryId)) };
}

/** The settings DescribeRepositories itself reports (no further call): mutability, scan on push, encryption. */
export function describedSettings(repository: Repository): DescribedSettings {
  const encryption = repository.encryptionConfiguration;
  const exclusions = repository.imageTagMutabilityExclusionFilters ?? [];
  return {
    imageTagMutability: repository.imageTagMutability ?? 'MUTABLE',
    ...(exclusions.length
      ? { imageTagMutabilityExclusionFilters: exclusions.map((f) => ({ filterType: f.filterType ?? 'WILDCARD', filter: f.filter ?? '' })) }
      : {}),
    scanOnPush: repository.imageScanningConfiguration?.scanOnPush ?? false,
    encryption: { type: encryption?.encryptionType ?? 'AES256', ...(encryption?.kmsKey ? { kmsKey: encryption.kmsKey } : {}) },
  };
}

/** The settings that cost a call each: lifecycle and repository policies (absent when none) and resource tags. */
export async function readPolicySettings(
  client: Client,
  repositoryName: string,
  repositoryArn: string,
  registryId?: string,
): Promise<Pick<RepositorySettings, 'lifecyclePolicy' | 'repositoryPolicy' | 'tags'>> {
  const absentWhen = (notFound: string) => (error: unknown) => {
    if (errorName(error) === notFound) return undefined;
    throw error;
  };
  const [lifecycle, policy, tags] = await Promise.all([
    client
      .send(new GetLifecyclePolicyCommand({ repositoryName, ...(registryId ? { registryId } : {}) }))
      .then((r) => r.lifecyclePolicyText, absentWhen('LifecyclePolicyNotFoundException')),
    client
      .send(new GetRepositoryPolicyCommand({ repositoryName, ...(registryId ? { registryId } : {}) }))
      .then((r) => r.policyText, absentWhen('RepositoryPolicyNotFoundException')),
    client.send(new ListTagsForResourceCommand({ resourceArn: repositoryArn })),
  ]);
  return {
    ...(lifecycle ? { lifecyclePolicy: lifecycle } : {}),
    ...(policy ? { repositoryPolicy: policy } : {}),
    tags: Object.fromEntries(
      (tags.tags ?? [])
        .filter((t) => t.Key !== undefined)
        .map((t) => [t.Key!, t.Value ?? ''] as const)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    ),
  };
}

/** The CreateRepository input that gives a new repository these settings (policies are separate calls). */
function createRepositoryInput(repositoryName: string, settings: RepositorySettings, registryId?: string): CreateRepositoryCommandInput {
  const tags = Object.entries(settings.tags).map(([Key, Value]) => ({ Key, Value }));
  return {
    repositoryName,
    ...(registryId ? { registryId } : {}),
    imageTagMutability: settings.imageTagMutability as ImageTagMutability,
    ...(settings.imageTagMutabilityExclusionFilters?.length
      ? {
          imageTagMutabilityExclusionFilters: settings.imageTagMutabilityExclusionFilters.map((f) => ({
            filterType: f.filterType as ImageTagMutabilityExclusionFilterType,
            filter: f.filter,
          })),
        }
      : {}),
    imageScanningConfiguration: { scanOnPush: settings.scanOnPush },
    encryptionConfiguration: {
      encryptionType: settings.encryption.type as EncryptionType,
      ...(settings.encryption.kmsKey ? { kmsKey: settings.encryption.kmsKey } : {}),
    },
    ...(tags.length ? { tags } : {}),
  };
}

/** CreateRepository refused the KMS key (missing in this region/account, or not usable by the caller). */
function isKmsKeyProblem(error: unknown): boolean {
  const name = errorName(error);
  if (name === 'KmsException') return true;
  const message = errorText(error);
  return (name === 'InvalidParameterException' || name === 'AccessDeniedException') && /\bkms\b/i.test(message);
}

/**
 * Creates a repository with recorded settings. Returns undefined when it already exists (the caller
 * compares instead); throws when it cannot be created at all. Policies that cannot be set are
 * reported in `problems`: the repository is usable without them.
 */
export async function createRepositoryWithSettings(
  client: Client,
  repositoryName: string,
  settings: RepositorySettings,
  options: ApplyOptions & { registryId?: string } = {},
): Promise<RepositoryPreparation | undefined> {
  const problems: string[] = [];
  const skipped: string[] = [];
  const input = createRepositoryInput(repositoryName, settings, options.registryId);
  try {
    await client.send(new CreateRepositoryCommand(input));
  } catch (error) {
    if (errorName(error) === 'RepositoryAlreadyExistsException') return undefined;
    if (!settings.encryption.kmsKey || !isKmsKeyProblem(error)) throw error;
    // The recorded key is not usable here: same encryption type, the AWS managed key.
    try {
      await client.send(
        new CreateRepositoryCommand({ ...input, encryptionConfiguration: { encryptionType: settings.encryption.type as EncryptionType } }),
      );
    } catch (retryError) {
      if (errorName(retryError) === 'RepositoryAlreadyExistsException') return undefined;
      throw retryError;
    }
    problems.push(
      `encryption: KMS key ${settings.encryption.kmsKey} not usable (${sdkErrorText(error)}); created with the AWS managed key (${settings.encryption.type})`,
    );
  }
  const policies: Array<[string, string | undefined, () => Promise<unknown>]> = [
    [
      'lifecycle policy',
      settings.lifecyclePolicy,
      () =>
        client.send(
          new PutLifecyclePolicyCommand({
            repositoryName,
            lifecyclePolicyText: settings.lifecyclePolicy!,
            ...(options.registryId ? { registryId: options.registryId } : {}),
          }),
        ),
    ],
    [
      'repository policy',
      settings.repositoryPolicy,
      () =>
        client.send(
          new SetRepositoryPolicyCommand({
            repositoryName,
            policyText: settings.repositoryPolicy!,
            ...(options.registryId ? { registryId: options.registryId } : {}),
          }),
        ),
    ],
  ];
  for (const [label, text, apply] of policies) {
    if (text === undefined) continue;
    if (options.skipPolicies) {
      skipped.push(label);
      continue;
    }
    try {
      await apply();
    } catch (error) {
      problems.push(`${label}: not set: ${sdkErrorText(error)}`);
    }
  }
  return { action: 'created', settingsApplied: true, ...(skipped.length ? { skipped } : {}), ...(problems.length ? { problems } : {}) };
}

/** JSON text compared by meaning (key order and whitespace ignored); falls back to the text itself. */
/**
 * For a repository that already exists: reads its settings and lists the differences from the recorded
 * ones. Never changes anything. A failed read is a problem, not an error: the images still restore.
 */
export async function compareExistingRepository(
  client: Client,
  repositoryName: string,
  recorded: RepositorySettings,
  options: ApplyOptions & { registryId?: string } = {},
): Promise<RepositoryPreparation> {
  try {
    const existing = await readRepositorySettings(client, repositoryName, options.registryId);
    const differences = diffRepositorySettings(existing, recorded, { ignorePolicies: options.skipPolicies });
    return { action: 'exists', ...(differences.length ? { differences } : {}) };
  } catch (error) {
    return { action: 'exists', problems: [`cannot compare settings: ${sdkErrorText(error)}`] };
  }
}
