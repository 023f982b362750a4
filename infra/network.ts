// The worker's network. By default a VPC of its own with no NAT and no internet gateway: everything
// the worker talks to (ECR api + dkr, S3, CloudWatch Logs, STS) is reached through VPC endpoints, and
// the S3 endpoint's policy allows the store and ECR's layer bucket only. Or a VPC the caller brings.
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { EcrBackupProps } from './props.ts';
import { retainVpcCustomResourceLogs } from './vpc-log-retention.ts';

export interface WorkerNetwork {
  vpc: ec2.IVpc;
  subnets: ec2.SubnetSelection;
  /** No inbound; HTTPS out. */
  taskSecurityGroup: ec2.SecurityGroup;
}

export function createWorkerNetwork(
  scope: Construct,
  props: Pick<EcrBackupProps, 'vpc' | 'vpcSubnets'>,
  bucket: s3.IBucket,
  retention: logs.RetentionDays,
): WorkerNetwork {
  const stack = Stack.of(scope);
  let subnets: ec2.SubnetSelection;
  let vpcOut: ec2.IVpc;
  let interfaceEndpoints: ec2.InterfaceVpcEndpoint[] = [];
  if (props.vpc) {
    vpcOut = props.vpc;
    subnets = props.vpcSubnets ?? {};
  } else {
    const flowLogs = new logs.LogGroup(scope, 'FlowLogs', { retention, removalPolicy: RemovalPolicy.DESTROY });
    // No NAT gateway: everything the worker talks to (ECR api + dkr, S3, CloudWatch Logs, STS) is
    // reached through VPC endpoints. Restoring into another region needs a VPC with egress.
    const vpc = new ec2.Vpc(scope, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      flowLogs: { all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL } },
    });
    retainVpcCustomResourceLogs(scope, vpc, retention);
    const s3Endpoint = vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    // Only the store's bucket and the bucket ECR serves layers from (a layer GET redirects there).
    s3Endpoint.addToPolicy(
      new iam.PolicyStatement({
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:GetObject', 's3:PutObject', 's3:ListBucket', 's3:AbortMultipartUpload', 's3:GetBucketLocation'],
        resources: [bucket.bucketArn, bucket.arnForObjects('*')],
      }),
    );
    s3Endpoint.addToPolicy(
      new iam.PolicyStatement({
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:GetObject'],
        resources: [`arn:${stack.partition}:s3:::prod-${stack.region}-starport-layer-bucket/*`],
      }),
    );
    interfaceEndpoints = [];
    for (const [name, service] of [
      ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
      ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
      ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
      ['Sts', ec2.InterfaceVpcEndpointAwsService.STS],
    ] as const) {
      interfaceEndpoints.push(vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true, open: false }));
    }
    vpcOut = vpc;
    subnets = props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  }
  const taskSecurityGroup = new ec2.SecurityGroup(scope, 'WorkerSecurityGroup', {
    vpc: vpcOut,
    description: 'ecr-backup Fargate worker: no inbound, HTTPS out (ECR, S3, Logs, STS)',
    allowAllOutbound: false,
  });
  taskSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS endpoints');

  // The endpoints accept HTTPS from the worker only.
  for (const endpoint of interfaceEndpoints) endpoint.connections.allowDefaultPortFrom(taskSecurityGroup, 'ecr-backup worker');
  return { vpc: vpcOut, subnets, taskSecurityGroup };
}
