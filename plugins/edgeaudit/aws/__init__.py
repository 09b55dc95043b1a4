"""AWS, read-only: the boto3 clients with the read cache and error mapping (clients), the guard
that refuses every write outside a declared grant, the DR scratch area, the prefetch of a
target's reads, the preflight of its permissions, and the audit role's policy.

Imports: rules/ and the ground.
"""
