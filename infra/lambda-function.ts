// One Lambda function of the workflow: an ESM bundle of a handler in lambdas/ (the SDK bundled, so
// the versions tested are the ones that run), its own role and log group, and nothing else. The
// bundle is the package's prebuilt one, or esbuild's at synth time in this repository (assets.ts).
import { type Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { deployableCode, ESM_BUNDLE, type LambdaName } from './assets.ts';

export function createLambdaFunction(
  scope: Construct,
  id: string,
  name: LambdaName,
  retention: logs.RetentionDays,
  timeout: Duration,
  environment: Record<string, string>,
): lambda.Function {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention, removalPolicy: RemovalPolicy.DESTROY });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `ecr-backup ${id} Lambda`,
  });
  const settings = {
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 1024,
    timeout,
    role,
    logGroup,
    environment,
  };
  const code = deployableCode().lambda(name);
  const fn =
    'prebuilt' in code
      ? new lambda.Function(scope, id, { ...settings, code: lambda.Code.fromAsset(code.prebuilt), handler: 'index.handler' })
      : new nodejs.NodejsFunction(scope, id, {
          ...settings,
          entry: code.entry,
          handler: 'handler',
          projectRoot: code.projectRoot,
          depsLockFilePath: code.lockFile,
          bundling: {
            format: nodejs.OutputFormat.ESM,
            target: ESM_BUNDLE.lambdaTarget,
            mainFields: [...ESM_BUNDLE.mainFields],
            banner: ESM_BUNDLE.banner,
            sourceMap: false,
            minify: false,
            forceDockerBundling: false,
            // The SDK versions tested are the ones that run: nothing is left to the runtime's copy.
            bundleAwsSDK: true,
            externalModules: [],
          },
        });
  // Logging: only its own log group (no AWSLambdaBasicExecutionRole managed policy).
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'Logs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }),
  );
  return fn;
}
