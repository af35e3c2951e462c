"""The bundled sandbox: a local moto server shaped like a real host staging environment.

It lets someone without an AWS account run the whole product. Moto is given AWS-like lifecycles
(a restore takes minutes, scaled down) so the engine behaves exactly as it does against AWS:
nothing outside this package knows it is talking to a sandbox. Only imported with DS_SANDBOX=1.
"""
