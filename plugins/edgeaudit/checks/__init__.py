"""What controls use to judge: policy evaluation, drills, drift, the Observatory score, cost
and the other rules the controls of suites/ apply. Nothing here is a pytest hook or fixture.

Imports: aws/, web/, rules/ and the ground.
"""
