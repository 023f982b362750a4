// The notification topic (failures, alarms): encrypted with a key of its own, TLS-only, and with a
// resource policy that lets this account's CloudWatch alarms publish. `enforceSSL` makes CDK write a
// topic policy, and a topic policy replaces SNS's default one, which was what let CloudWatch alarms
// publish: without `allowAlarmPublishing` the alarms go to ALARM and nothing is delivered.
import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as snsSubscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';

export function createNotificationTopic(scope: Construct, notificationEmail: string | undefined): { topic: sns.Topic; topicKey: kms.Key } {
  const stack = Stack.of(scope);
  // A dedicated key: CloudWatch alarms can only publish to an encrypted topic whose key policy lets
  // cloudwatch.amazonaws.com use it, which an existing store key may not allow.
  const topicKey = new kms.Key(scope, 'TopicKey', {
    description: 'ecr-backup notifications',
    enableKeyRotation: true,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  topicKey.addToResourcePolicy(
    new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: ['*'], // in a key policy, "*" means this key
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }),
  );
  const topic = new sns.Topic(scope, 'Notifications', { displayName: 'ecr-backup', masterKey: topicKey, enforceSSL: true });
  allowAlarmPublishing(topic);
  if (notificationEmail) topic.addSubscription(new snsSubscriptions.EmailSubscription(notificationEmail));
  return { topic, topicKey };
}

/** Lets this account's CloudWatch alarms (and only them) publish to the topic. */
function allowAlarmPublishing(topic: sns.Topic): void {
  const stack = Stack.of(topic);
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'AllowCloudWatchAlarms',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': stack.account },
        ArnLike: {
          'aws:SourceArn': stack.formatArn({
            service: 'cloudwatch',
            resource: 'alarm',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }),
  );
}
