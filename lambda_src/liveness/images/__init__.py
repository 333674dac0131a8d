"""Frame intake: parse the uploaded image, check it really is PNG/JPEG, decode, bound its size, crop faces.

- ``limits``: the bounds, each set by a downstream limit (Rekognition's, Lambda's);
- ``intake``: the upload field (data URL or base64), the sniffed type, the one path every upload takes;
- ``container``: the PNG/JPEG structure walk, refusing bombs before the decoder runs;
- ``decode``: strict decoding and the fit for analysis;
- ``crop``: face boxes, crops and JPEG encoding.
"""
