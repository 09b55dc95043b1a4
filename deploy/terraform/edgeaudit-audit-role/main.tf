# edgeaudit's read-only audit role. policy.json beside this file is generated from the reads the
# controls declare (`edgeaudit audit-role --format terraform-policy > policy.json`); do not edit
# it by hand. Its scratch statements name the bucket SCRATCH_BUCKET: this module puts
# var.scratch_bucket there, or leaves them out when no scratch bucket is given.

locals {
  generated = jsondecode(file("${path.module}/policy.json"))
  policy = {
    Version = local.generated.Version
    Statement = [
      for statement in local.generated.Statement :
      jsondecode(replace(jsonencode(statement), "SCRATCH_BUCKET", var.scratch_bucket))
      if !startswith(statement.Sid, "EdgeauditDrillScratch") || var.scratch_bucket != ""
    ]
  }

  github_oidc_url    = "token.actions.githubusercontent.com"
  trust_github       = var.github_repository != ""
  trust_aws          = var.trusted_principal_arn != "" || !local.trust_github
  trusted_principal  = var.trusted_principal_arn != "" ? var.trusted_principal_arn : "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
  lookup_github_oidc = local.trust_github && var.github_oidc_provider_arn == "" && !var.create_github_oidc_provider
  github_oidc_provider_arn = (
    var.github_oidc_provider_arn != "" ? var.github_oidc_provider_arn :
    var.create_github_oidc_provider ? one(aws_iam_openid_connect_provider.github[*].arn) :
    one(data.aws_iam_openid_connect_provider.github[*].arn)
  )
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

data "aws_iam_openid_connect_provider" "github" {
  count = local.lookup_github_oidc ? 1 : 0
  url   = "https://${local.github_oidc_url}"
}

resource "aws_iam_openid_connect_provider" "github" {
  count           = local.trust_github && var.create_github_oidc_provider ? 1 : 0
  url             = "https://${local.github_oidc_url}"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
  tags            = var.tags
}

data "aws_iam_policy_document" "trust" {
  dynamic "statement" {
    for_each = local.trust_aws ? [local.trusted_principal] : []
    content {
      sid     = "TrustedPrincipal"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "AWS"
        identifiers = [statement.value]
      }
    }
  }

  dynamic "statement" {
    for_each = local.trust_github ? [var.github_repository] : []
    content {
      sid     = "GitHubActions"
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [local.github_oidc_provider_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "${local.github_oidc_url}:aud"
        values   = ["sts.amazonaws.com"]
      }
      condition {
        test     = "StringLike"
        variable = "${local.github_oidc_url}:sub"
        values   = ["repo:${statement.value}:*"]
      }
    }
  }
}

resource "aws_iam_role" "audit" {
  name               = var.role_name
  description        = "edgeaudit: read-only audit of static sites on S3 + CloudFront"
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

resource "aws_iam_policy" "audit" {
  name        = "${var.role_name}-policy"
  description = "edgeaudit: the reads the controls declare; drill writes under _edgeaudit/ only"
  policy      = jsonencode(local.policy)
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "audit" {
  role       = aws_iam_role.audit.name
  policy_arn = aws_iam_policy.audit.arn
}
