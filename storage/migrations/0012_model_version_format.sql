-- The format of a version's model file, declared at upload or detected from its bytes
-- (TFLite's FlatBuffer identifier "TFL3" at offset 4): the compile orchestrator hands it
-- to the compiler, which refuses bytes that are not in it (issue 17, point 5). Versions
-- uploaded before this were all ONNX.
ALTER TABLE model_versions ADD COLUMN model_format text NOT NULL DEFAULT 'onnx'
  CHECK (model_format IN ('onnx', 'tflite'));
