// The worker's inspection commands: devices, model-info, checkpoint-info and eval.
#pragma once

#include <string>

namespace smartcash::train {

/// `devices`: which accelerators this LibTorch can use here, and why not (to_json(DevicesReport)
/// with `json`, a short table without).
int run_devices(bool json);

/// `model-info`: parameter counts per component. Exactly one of config_path / backbone is set.
/// With `pretrained` (a weights file), also what loading it would do; exit code config_error
/// when it would not load under strict loading.
int run_model_info(const std::string& config_path, const std::string& backbone, bool json,
                   const std::string& pretrained = {});

/// `checkpoint-info FILE`: format, phase, epoch, step, tier, validity and the weights' SHA-256.
/// Exit code 0 when the checkpoint is valid, io_error otherwise.
int run_checkpoint_info(const std::string& path, bool json);

/// `export`: writes a checkpoint's weights (all, or the backbone only) as safetensors under
/// `naming` (smartcash, torchvision, timm, yolov5), to start another run from.
int run_export(const std::string& checkpoint_path, const std::string& out_path, bool backbone_only,
               const std::string& naming);

/// `eval`: scores a checkpoint's weights on a split of the config's dataset.
int run_eval(const std::string& config_path, const std::string& checkpoint_path,
             const std::string& split, const std::string& run_dir, bool json);

}  // namespace smartcash::train
