#include "worker/data/dataset_source.hpp"

#include <fmt/core.h>

#include "common/run_dir.hpp"
#include "worker/data/synth.hpp"

namespace smartcash::data {

std::string prepare_dataset(const Config& config, const std::string& run_dir,
                            const std::function<void(const std::string&)>& log) {
    if (config.data.dataset != "synthetic") return config.data.dataset;
    SynthOptions options;
    options.out = run_dir::data(run_dir);
    options.images = config.data.synthetic.images;
    options.size = config.data.synthetic.size;
    options.seed = config.data.synthetic.seed;
    if (!synthetic_complete(options)) {
        if (log)
            log(fmt::format("generating the synthetic dataset ({} images, {} px) in {}",
                            options.images, options.size, options.out));
        synthesize(options);
    }
    return options.out;
}

}  // namespace smartcash::data
