// The worker's inspection commands: devices, model-info, checkpoint-info and eval.
#pragma once

#include <string>

namespace smartcash::train {

/// `devices`: which accelerators this LibTorch can use here, and why not (to_json(DevicesReport)
/// with `json`, a short table without).
int run_devices(bool json);

/// `model-info`: parameter counts per component. Exactly one of config_path / backbone is set.
int run_model_info(const std::string& config_path, const std::string& backbone, bool json);

/// `checkpoint-info FILE`: format, phase, epoch, step, tier, validity and the weights' SHA-256.
/// Exit code 0 when the checkpoint is valid, io_error otherwise.
int run_checkpoint_info(const std::string& path, bool json);

/// `eval`: scores a checkpoint's weights on a split of the config's dataset.
int run_eval(const std::string& config_path, const std::string& checkpoint_path, const std::string& split,
             const std::string& run_dir, bool json);

}  // namespace smartcash::train
