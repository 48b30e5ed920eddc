"""Pipeline stages, one module each: io (ml.io), classify, pose, segment, crops, product, swatch."""
