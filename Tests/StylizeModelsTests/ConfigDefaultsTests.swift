import Foundation
@testable import StylizeModels
import XCTest

/// Configs with their optional keys left out load with the reference library's defaults.
/// The expected values are copied from the library (file named at each test; transformers
/// 5.24 and tokenizers 0.23 were also run on the same inputs), never from our code.
final class ConfigDefaultsTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "stylize-defaults-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func file(_ name: String, _ json: String) throws -> String {
        let path = dir + "/" + name
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// diffusers src/diffusers/models/unets/unet_2d_condition.py, UNet2DConditionModel.__init__.
    func testUNet2DConditionDefaults() throws {
        let c = try UNet2DConditionConfig(file: file("unet.json", #"{"_class_name": "UNet2DConditionModel"}"#))
        XCTAssertEqual(c.inChannels, 4)
        XCTAssertEqual(c.outChannels, 4)
        XCTAssertFalse(c.centerInputSample)
        XCTAssertTrue(c.flipSinToCos)
        XCTAssertEqual(c.freqShift, 0)
        XCTAssertEqual(c.downBlockTypes, ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"])
        XCTAssertEqual(c.midBlockType, "UNetMidBlock2DCrossAttn")
        XCTAssertEqual(c.upBlockTypes, ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
        XCTAssertEqual(c.onlyCrossAttention, [false, false, false, false])
        XCTAssertFalse(c.midBlockOnlyCrossAttention)   // None → only_cross_attention when that is a bool
        XCTAssertEqual(c.blockOutChannels, [320, 640, 1280, 1280])
        XCTAssertEqual(c.layersPerBlock, [2, 2, 2, 2])
        XCTAssertEqual(c.downsamplePadding, 1)
        XCTAssertEqual(c.midBlockScaleFactor, 1)
        XCTAssertEqual(c.actFn, .silu)
        XCTAssertEqual(c.normNumGroups, 32)
        XCTAssertEqual(c.normEps, 1e-5)
        XCTAssertEqual(c.crossAttentionDim, [1280, 1280, 1280, 1280])
        XCTAssertEqual(c.transformerLayersPerBlock, [1, 1, 1, 1])
        XCTAssertNil(c.reverseTransformerLayersPerBlock)
        XCTAssertNil(c.encoderHidDim)
        XCTAssertEqual(c.numAttentionHeads, [8, 8, 8, 8])   // num_attention_heads or attention_head_dim (8)
        XCTAssertFalse(c.useLinearProjection)
        XCTAssertNil(c.additionEmbedType)
        XCTAssertNil(c.additionTimeEmbedDim)
        XCTAssertNil(c.projectionClassEmbeddingsInputDim)
        XCTAssertEqual(c.resnetOutScaleFactor, 1)
        XCTAssertNil(c.timeEmbeddingDim)
        XCTAssertEqual(c.timeEmbedDim, 320 * 4)            // time_embedding_dim or block_out_channels[0] * 4
        XCTAssertNil(c.timeEmbeddingActFn)
        XCTAssertNil(c.timestepPostAct)
        XCTAssertNil(c.timeCondProjDim)
        XCTAssertEqual(c.convInKernel, 3)
        XCTAssertEqual(c.convOutKernel, 3)
    }

    /// diffusers src/diffusers/models/autoencoders/autoencoder_tiny.py, AutoencoderTiny.__init__.
    func testAutoencoderTinyDefaults() throws {
        let c = try AutoencoderTinyConfig(file: file("vae.json", #"{"_class_name": "AutoencoderTiny"}"#))
        XCTAssertEqual(c.inChannels, 3)
        XCTAssertEqual(c.outChannels, 3)
        XCTAssertEqual(c.encoderBlockOutChannels, [64, 64, 64, 64])
        XCTAssertEqual(c.decoderBlockOutChannels, [64, 64, 64, 64])
        XCTAssertEqual(c.act, .relu)
        XCTAssertEqual(c.latentChannels, 4)
        XCTAssertEqual(c.upsamplingScalingFactor, 2)
        XCTAssertEqual(c.numEncoderBlocks, [1, 3, 3, 3])
        XCTAssertEqual(c.numDecoderBlocks, [3, 3, 3, 1])
        XCTAssertEqual(c.latentMagnitude, 3)
        XCTAssertEqual(c.latentShift, 0.5)
        XCTAssertEqual(c.scalingFactor, 1)
        XCTAssertEqual(c.shiftFactor, 0)
    }

    /// transformers src/transformers/models/clip/configuration_clip.py, CLIPTextConfig (also
    /// as CLIPConfig's text_config).
    func testCLIPTextDefaults() throws {
        for json in [#"{"model_type": "clip_text_model"}"#, #"{"model_type": "clip", "text_config": {}}"#] {
            let c = try CLIPTextConfig(file: file("clip.json", json))
            XCTAssertEqual(c.vocabSize, 49408)
            XCTAssertEqual(c.hiddenSize, 512)
            XCTAssertEqual(c.intermediateSize, 2048)
            XCTAssertEqual(c.numHiddenLayers, 12)
            XCTAssertEqual(c.numAttentionHeads, 8)
            XCTAssertEqual(c.maxPositionEmbeddings, 77)
            XCTAssertEqual(c.hiddenAct, .quickGelu)
            XCTAssertEqual(c.layerNormEps, 1e-5)
            XCTAssertEqual(c.eosTokenId, 49407)
        }
    }

    /// transformers src/transformers/models/qwen3/configuration_qwen3.py, Qwen3Config:
    /// num_key_value_heads 32 (None → num_attention_heads), head_dim 128, default_theta 10000.
    func testQwen3Defaults() throws {
        let c = try Qwen3TextConfig(ConfigReader(object: [:], file: "qwen3.json"), family: .qwen3)
        XCTAssertEqual(c.vocabSize, 151936)
        XCTAssertEqual(c.hiddenSize, 4096)
        XCTAssertEqual(c.intermediateSize, 22016)
        XCTAssertEqual(c.numHiddenLayers, 32)
        XCTAssertEqual(c.numAttentionHeads, 32)
        XCTAssertEqual(c.numKeyValueHeads, 32)
        XCTAssertEqual(c.headDim, 128)
        XCTAssertEqual(c.hiddenAct, .silu)
        XCTAssertEqual(c.rmsNormEps, 1e-6)
        XCTAssertEqual(c.ropeTheta, 10000)
        XCTAssertFalse(c.attentionBias)
        XCTAssertNil(c.mropeSection)
        // An absent head_dim is 128 whatever hidden_size / heads is (Qwen3-0.6B: 1024 / 16
        // with head_dim 128); num_key_value_heads absent is 32, not the head count.
        let small = try Qwen3TextConfig(ConfigReader(object: ["hidden_size": .int(1024), "num_attention_heads": .int(64)],
                                                     file: "qwen3.json"), family: .qwen3)
        XCTAssertEqual(small.headDim, 128)
        XCTAssertEqual(small.numKeyValueHeads, 32)
        // Explicit nulls: one KV head per head, head_dim from hidden_size / heads.
        let nulls = try Qwen3TextConfig(ConfigReader(object: ["hidden_size": .int(1024), "num_attention_heads": .int(16),
                                                              "num_key_value_heads": .null, "head_dim": .null],
                                                     file: "qwen3.json"), family: .qwen3)
        XCTAssertEqual(nulls.numKeyValueHeads, 16)
        XCTAssertEqual(nulls.headDim, 64)
    }

    /// transformers src/transformers/models/qwen3_vl/configuration_qwen3_vl.py
    /// (Qwen3VLTextConfig: default_theta 500000, head_dim 128; Qwen3VLVisionConfig; the
    /// token ids of Qwen3VLConfig) and modeling_qwen3_vl.py (Qwen3VLTextRotaryEmbedding:
    /// rope_parameters.get("mrope_section", [24, 20, 20])).
    func testQwen3VLDefaults() throws {
        let t = try Qwen3TextConfig(ConfigReader(object: [:], file: "text_config"), family: .qwen3VLText)
        XCTAssertEqual(t.vocabSize, 151936)
        XCTAssertEqual(t.hiddenSize, 4096)
        XCTAssertEqual(t.intermediateSize, 22016)
        XCTAssertEqual(t.numHiddenLayers, 32)
        XCTAssertEqual(t.numAttentionHeads, 32)
        XCTAssertEqual(t.numKeyValueHeads, 32)
        XCTAssertEqual(t.headDim, 128)
        XCTAssertEqual(t.hiddenAct, .silu)
        XCTAssertEqual(t.rmsNormEps, 1e-6)
        XCTAssertEqual(t.ropeTheta, 500_000)
        XCTAssertFalse(t.attentionBias)
        XCTAssertEqual(t.mropeSection, [24, 20, 20])

        let v = try Qwen3VLVisionConfig(ConfigReader(object: [:], file: "vision_config"))
        XCTAssertEqual(v.depth, 27)
        XCTAssertEqual(v.hiddenSize, 1152)
        XCTAssertEqual(v.hiddenAct, .geluTanh)
        XCTAssertEqual(v.intermediateSize, 4304)
        XCTAssertEqual(v.numHeads, 16)
        XCTAssertEqual(v.inChannels, 3)
        XCTAssertEqual(v.patchSize, 16)
        XCTAssertEqual(v.spatialMergeSize, 2)
        XCTAssertEqual(v.temporalPatchSize, 2)
        XCTAssertEqual(v.outHiddenSize, 3584)
        XCTAssertEqual(v.numPositionEmbeddings, 2304)
        XCTAssertEqual(v.deepstackVisualIndexes, [8, 16, 24])

        // The issue's config: rope_parameters (or legacy rope_scaling) without
        // mrope_section loads in transformers; the vision tower left at its defaults.
        for rope in [#""rope_parameters": {"rope_type": "default", "rope_theta": 5000000}"#,
                     #""rope_scaling": {"rope_type": "default", "mrope_interleaved": true}, "rope_theta": 5000000"#] {
            let c = try Qwen3VLConfig(file: file("vl.json", #"{"model_type": "qwen3_vl", "text_config": {"hidden_size": 3584, \#(rope)}}"#))
            XCTAssertEqual(c.text.mropeSection, [24, 20, 20], rope)
            XCTAssertEqual(c.text.ropeTheta, 5_000_000, rope)
            XCTAssertEqual(c.vision.outHiddenSize, 3584)
            XCTAssertEqual([c.imageTokenId, c.videoTokenId, c.visionStartTokenId, c.visionEndTokenId], [151655, 151656, 151652, 151653])
        }
    }

    /// diffusers src/diffusers/schedulers/scheduling_*.py, each class's __init__: a config
    /// naming only the class behaves as one with the library's defaults written out.
    func testSchedulerDefaults() throws {
        let ddpm = #""num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear", "trained_betas": null, "prediction_type": "epsilon", "steps_offset": 0, "rescale_betas_zero_snr": false"#
        let consistency = #""num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "trained_betas": null, "original_inference_steps": 50, "clip_sample": false, "clip_sample_range": 1.0, "set_alpha_to_one": true, "steps_offset": 0, "prediction_type": "epsilon", "thresholding": false, "timestep_spacing": "leading", "timestep_scaling": 10.0, "rescale_betas_zero_snr": false"#
        let explicit: [(String, String)] = [
            ("DDIMScheduler", ddpm + #", "clip_sample": true, "set_alpha_to_one": true, "thresholding": false, "clip_sample_range": 1.0, "timestep_spacing": "leading""#),
            ("EulerAncestralDiscreteScheduler", ddpm + #", "timestep_spacing": "linspace""#),
            ("EulerDiscreteScheduler", ddpm + #", "interpolation_type": "linear", "use_karras_sigmas": false, "use_exponential_sigmas": false, "use_beta_sigmas": false, "timestep_spacing": "linspace", "timestep_type": "discrete", "final_sigmas_type": "zero""#),
            ("LCMScheduler", consistency),
            ("TCDScheduler", consistency),
            ("FlowMatchEulerDiscreteScheduler", #""num_train_timesteps": 1000, "shift": 1.0, "use_dynamic_shifting": false, "base_shift": 0.5, "max_shift": 1.15, "base_image_seq_len": 256, "max_image_seq_len": 4096, "invert_sigmas": false, "shift_terminal": null, "use_karras_sigmas": false, "use_exponential_sigmas": false, "use_beta_sigmas": false, "time_shift_type": "exponential", "stochastic_sampling": false"#),
        ]
        for (name, keys) in explicit {
            var bare = try SchedulerFactory.make(configFile: file("bare.json", #"{"_class_name": "\#(name)"}"#))
            var full = try SchedulerFactory.make(configFile: file("full.json", #"{"_class_name": "\#(name)", \#(keys)}"#))
            XCTAssertEqual(bare.predictionType, full.predictionType, name)
            XCTAssertEqual(bare.numTrainTimesteps, full.numTrainTimesteps, name)
            for steps in [1, 4, 25] {
                try bare.setTimesteps(steps)
                try full.setTimesteps(steps)
                XCTAssertEqual(bare.timesteps, full.timesteps, "\(name), \(steps) steps")
                XCTAssertEqual(bare.sigmas, full.sigmas, "\(name), \(steps) steps")
                XCTAssertEqual(bare.initNoiseSigma, full.initNoiseSigma, "\(name), \(steps) steps")
                // The noise schedule (betas → alphas_cumprod, or the flow sigmas).
                let original = Tensor(shape: [1, 2, 2, 1], data: [1, -1, 0.5, 0])
                let noise = Tensor(shape: [1, 2, 2, 1], data: [0.3, 0.3, -0.7, 1])
                let t = try XCTUnwrap(full.timesteps.first)
                XCTAssertEqual(try bare.addNoise(original: original, noise: noise, timestep: t).data.array,
                               try full.addNoise(original: original, noise: noise, timestep: t).data.array, "\(name), \(steps) steps")
            }
        }
        // The values themselves, for the ones the classes expose.
        let ddim = try XCTUnwrap(try SchedulerFactory.make(configFile: file("d.json", #"{"_class_name": "DDIMScheduler"}"#)) as? DDIMScheduler)
        XCTAssertEqual([ddim.timestepSpacing, "\(ddim.stepsOffset)", "\(ddim.clipSample)", "\(ddim.clipSampleRange)", "\(ddim.finalAlphaCumprod)"],
                       ["leading", "0", "true", "1.0", "1.0"])
        let lcm = try XCTUnwrap(try SchedulerFactory.make(configFile: file("l.json", #"{"_class_name": "LCMScheduler"}"#)) as? LCMScheduler)
        XCTAssertEqual([lcm.originalInferenceSteps], [50])
        XCTAssertEqual([lcm.timestepScaling, Double(lcm.clipSampleRange)], [10, 1])
        XCTAssertFalse(lcm.clipSample)
        let flow = try XCTUnwrap(try SchedulerFactory.make(configFile: file("f.json", #"{"_class_name": "FlowMatchEulerDiscreteScheduler"}"#)) as? FlowMatchEulerDiscreteScheduler)
        XCTAssertEqual([flow.shift, flow.baseShift, flow.maxShift], [1, 0.5, 1.15])
        XCTAssertEqual([flow.baseImageSeqLen, flow.maxImageSeqLen], [256, 4096])
        XCTAssertEqual(flow.timeShiftType, "exponential")
        XCTAssertNil(flow.shiftTerminal)
        XCTAssertFalse(flow.useDynamicShifting || flow.stochasticSampling)
    }

    /// tokenizers (Rust) serde defaults, checked with tokenizers 0.23: root version "1.0",
    /// truncation / padding / normalizer / pre_tokenizer / post_processor / decoder null,
    /// added_tokens []; BPE type "BPE", dropout / unk_token / continuing_subword_prefix /
    /// end_of_word_suffix null, fuse_unk / byte_fallback / ignore_merges false; ByteLevel
    /// use_regex true. (ByteLevel's add_prefix_space and trim_offsets, Split's behavior and
    /// invert, and the added-token flags are required there.) The Qwen fixture without
    /// those keys still encodes every case as the library does.
    func testTokenizerOptionalKeysTakeTheLibraryDefaults() throws {
        let source = Fixtures.path("tokenizers", "qwen", "tokenizer.json")
        var root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: source))) as? [String: Any])
        for key in ["version", "truncation", "padding", "normalizer"] { root[key] = nil }
        var model = try XCTUnwrap(root["model"] as? [String: Any])
        // "" and null are the same prefix / suffix for BPE.
        for key in ["type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges"] {
            model[key] = nil
        }
        root["model"] = model
        var pre = try XCTUnwrap(root["pre_tokenizer"] as? [String: Any])
        var pieces = try XCTUnwrap(pre["pretokenizers"] as? [[String: Any]])
        XCTAssertEqual(pieces[1]["use_regex"] as? Bool, false, "the fixture sets use_regex false: keep it")
        pre["pretokenizers"] = pieces
        root["pre_tokenizer"] = pre
        for key in ["post_processor", "decoder"] {
            var node = try XCTUnwrap(root[key] as? [String: Any])
            node["use_regex"] = nil   // true; unused by ByteLevel's post-processing and decoding
            root[key] = node
        }
        let stripped = try JSONSerialization.data(withJSONObject: root)
        let tokenizer = try Tokenizer(tokenizerJSONData: stripped, file: "stripped tokenizer.json")
        let cases = try JSONDecoder().decode([TokenizerCase].self,
                                             from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tokenizers", "qwen", "cases.json"))))
        // The fixture's normalizer is NFC; without it only already-NFC text is comparable.
        // (Compared by scalars: String's == already treats canonical equivalents as equal.)
        let comparable = cases.filter { Array($0.text.unicodeScalars) == Array($0.text.precomposedStringWithCanonicalMapping.unicodeScalars) }
        XCTAssertGreaterThan(comparable.count, cases.count / 2)
        for c in comparable { XCTAssertEqual(tokenizer.encode(c.text), c.ids, c.text.debugDescription) }
        // Without added_tokens the special tokens are plain text again.
        root["added_tokens"] = nil
        let bare = try Tokenizer(tokenizerJSONData: JSONSerialization.data(withJSONObject: root), file: "bare tokenizer.json")
        XCTAssertNil(bare.tokenToId("<|im_start|>"))
    }
}
