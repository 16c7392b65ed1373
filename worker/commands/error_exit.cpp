#include "worker/commands/error_exit.hpp"

#include <new>

#include "common/atomic_file.hpp"
#include "common/config.hpp"
#include "common/exit_codes.hpp"
#include "worker/checkpoint/checkpoint.hpp"
#include "worker/data/dataset.hpp"
#include "worker/distributed/process_group.hpp"
#include "worker/train/faults.hpp"

namespace smartcash::train {

ErrorExit error_exit(std::exception_ptr error) {
    try {
        std::rethrow_exception(error);
    } catch (const ConfigError& e) {
        return {exit_code::config_error, "config", e.what()};
    } catch (const data::DataError& e) {
        return {exit_code::data_error, "data", e.what()};
    } catch (const IoError& e) {
        return {exit_code::io_error, "io", e.what()};
    } catch (const CheckpointError& e) {
        return {exit_code::io_error, "io", e.what()};
    } catch (const dist::DistributedError& e) {
        // Outside the training loop (the rendezvous, the agreements at start): no checkpoint.
        return {exit_code::peer_lost, "peer", e.what()};
    } catch (const DivergedError& e) {
        return {exit_code::diverged, "training", e.what()};
    } catch (const std::bad_alloc&) {
        return {exit_code::oom, "internal", "out of memory outside a training step"};
    } catch (const std::exception& e) {
        const std::string what = e.what();
        if (is_out_of_memory(e))
            return {exit_code::oom, "internal",
                    "out of memory outside a training step: " + what.substr(0, what.find('\n'))};
        return {exit_code::internal_error, "internal", what};
    } catch (...) {
        return {exit_code::internal_error, "internal", "unknown error"};
    }
}

}  // namespace smartcash::train
