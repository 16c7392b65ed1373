#include "common/devices_report.hpp"

namespace smartcash {

namespace {

protocol::Json status_json(const DeviceStatus& s) {
    protocol::Json j{{devices_field::usable, s.usable}};
    if (!s.usable) j[devices_field::why] = s.why;
    return j;
}

bool status_from_json(const protocol::Json& json, const char* name, DeviceStatus* out,
                      std::string* error) {
    auto it = json.find(name);
    if (it == json.end() || !it->is_object()) {
        *error = std::string("no \"") + name + "\" object";
        return false;
    }
    auto usable = it->find(devices_field::usable);
    if (usable == it->end() || !usable->is_boolean()) {
        *error = std::string("\"") + name + "\" has no boolean \"usable\"";
        return false;
    }
    out->usable = usable->get<bool>();
    auto why = it->find(devices_field::why);
    out->why = why != it->end() && why->is_string() ? why->get<std::string>() : std::string();
    return true;
}

}  // namespace

protocol::Json to_json(const DevicesReport& report) {
    return protocol::Json{{devices_field::cuda, status_json(report.cuda)},
                          {devices_field::mps, status_json(report.mps)},
                          {devices_field::torch_version, report.torch_version},
                          {devices_field::blas, report.blas},
                          {devices_field::blas_library, report.blas_library},
                          {devices_field::blas_reference, report.blas_reference}};
}

std::optional<DevicesReport> devices_report_from_json(const protocol::Json& json,
                                                      std::string* error) {
    if (!json.is_object()) {
        *error = "not a JSON object";
        return std::nullopt;
    }
    DevicesReport r;
    if (!status_from_json(json, devices_field::cuda, &r.cuda, error) ||
        !status_from_json(json, devices_field::mps, &r.mps, error))
        return std::nullopt;
    r.torch_version = json.value(devices_field::torch_version, "");
    r.blas = json.value(devices_field::blas, "");
    r.blas_library = json.value(devices_field::blas_library, "");
    r.blas_reference = json.value(devices_field::blas_reference, false);
    return r;
}

}  // namespace smartcash
