"""edgeaudit: compliance controls for static sites on S3 + CloudFront, as a pytest plugin."""

__version__ = "0.1.0"
