variable "role_name" {
  description = "Name of the audit role (its managed policy is named <role_name>-policy)."
  type        = string
  default     = "edgeaudit-audit"
}

variable "scratch_bucket" {
  description = "The targets' scratch_bucket for the disaster-recovery drills (pytest -m dr): writes under _edgeaudit/ of it only. Empty: no drill writes."
  type        = string
  default     = ""

  validation {
    condition     = var.scratch_bucket == "" || (can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.scratch_bucket)) && length(regexall("\\.\\.", var.scratch_bucket)) == 0)
    error_message = "The scratch_bucket must be one S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens; no wildcards such as *), or empty."
  }
}

variable "trusted_principal_arn" {
  description = "Who may assume the role (an IAM role or user ARN). Empty: this account's IAM identities, unless github_repository is set."
  type        = string
  default     = ""
}

variable "github_repository" {
  description = "owner/repo whose GitHub Actions workflows may assume the role through GitHub's OIDC provider. Empty: no GitHub trust."
  type        = string
  default     = ""

  validation {
    condition     = var.github_repository == "" || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "The github_repository must be owner/repo, e.g. example/www."
  }
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's IAM OIDC provider for token.actions.githubusercontent.com. Empty: looked up (or created with create_github_oidc_provider)."
  type        = string
  default     = ""
}

variable "create_github_oidc_provider" {
  description = "Create the IAM OIDC provider for GitHub Actions (an account holds one; set it only where none exists)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the role and its policy."
  type        = map(string)
  default     = {}
}
