output "role_arn" {
  description = "The role to run edgeaudit with."
  value       = aws_iam_role.audit.arn
}

output "role_name" {
  description = "Name of the audit role."
  value       = aws_iam_role.audit.name
}

output "policy_arn" {
  description = "The role's managed policy."
  value       = aws_iam_policy.audit.arn
}
