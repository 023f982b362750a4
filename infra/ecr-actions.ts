// The ECR actions a role needs to create a repository and push an image into it (the restore task
// and the restore drill). One list, so the two roles cannot drift apart.
export const ECR_PUSH_ACTIONS = [
  'ecr:CreateRepository',
  'ecr:DescribeRepositories',
  'ecr:BatchGetImage',
  'ecr:BatchCheckLayerAvailability',
  'ecr:InitiateLayerUpload',
  'ecr:UploadLayerPart',
  'ecr:CompleteLayerUpload',
  'ecr:PutImage',
];
