// Reference inference for the parity tests: runs the upstream model in its own runtime.
// Usage: node infer.js onnx  MODEL.onnx  INPUT.f32 D0,D1,... INPUT_NAME OUTPUT_NAME OUT.f32
//        node infer.js tfjs  MODEL.json  INPUT.f32 D0,D1,... -          -           OUT.f32
//        node infer.js tfjs  MODEL.json  INPUT.f32 D0,D1,... -          NAME,NAME,… OUT.f32
// With output names (a graph with several outputs), each input's outputs are written in that
// order, one input after another.
// Inputs and outputs are raw little-endian float32; several inputs of the same shape may be
// given as INPUT.f32 holding them back to back (batch of 1 each), outputs are written the same way.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [kind, modelPath, inputPath, dimsText, inputName, outputName, outPath] = process.argv.slice(2);
  const dims = dimsText.split(',').map(Number);
  const per = dims.reduce((a, b) => a * b, 1);
  const raw = fs.readFileSync(inputPath);
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  if (all.length % per !== 0) throw new Error(`input size ${all.length} is not a multiple of ${per}`);
  const count = all.length / per;
  const outputs = [];
  if (kind === 'onnx') {
    const ort = require('onnxruntime-node');
    const session = await ort.InferenceSession.create(modelPath, {
      executionProviders: ['cpu'], intraOpNumThreads: 2, graphOptimizationLevel: 'all'});
    for (let i = 0; i < count; i++) {
      const tensor = new ort.Tensor('float32', all.slice(i * per, (i + 1) * per), dims);
      const result = await session.run({[inputName]: tensor}, [outputName]);
      outputs.push(Buffer.from(result[outputName].data.buffer));
    }
  } else if (kind === 'tfjs') {
    const tf = require('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    const handler = {
      load: async () => {
        const model = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
        const buffers = [];
        for (const group of model.weightsManifest) {
          for (const p of group.paths) buffers.push(fs.readFileSync(path.join(path.dirname(modelPath), p)));
        }
        const weightData = Buffer.concat(buffers);
        return {
          modelTopology: model.modelTopology, format: model.format,
          weightSpecs: model.weightsManifest.flatMap((g) => g.weights),
          weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
        };
      },
    };
    const model = await tf.loadGraphModel(handler);
    for (let i = 0; i < count; i++) {
      const input = tf.tensor(all.slice(i * per, (i + 1) * per), dims, 'float32');
      const names = outputName === '-' ? null : outputName.split(',');
      const result = names ? model.execute(input, names) : [model.predict(input)];
      for (const output of result) {
        const data = await output.data();
        outputs.push(Buffer.from(new Float32Array(data).buffer));
      }
      tf.dispose([input, ...result]);
    }
  } else {
    throw new Error(`unknown kind ${kind}`);
  }
  fs.writeFileSync(outPath, Buffer.concat(outputs));
}

main().catch((err) => { console.error(`infer.js: ${err.stack || err}`); process.exit(1); });
