// Pretrained weights: the safetensors reader and writer, the name tables, naming detection, and
// strict / non-strict loading into a tiny detector.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/atomic_file.hpp"
#include "model_test_util.hpp"
#include "worker/model/pretrained.hpp"
#include "worker/model/safetensors.hpp"

namespace smartcash::model {
namespace {

namespace fs = std::filesystem;
using testing::tiny_options;

fs::path scratch(const std::string& name) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    fs::path dir = fs::path(SMARTCASH_TEST_TMP) / "pretrained" /
                   (std::string(info->test_suite_name()) + "." + info->name());
    fs::create_directories(dir);
    return dir / name;
}

std::string write_named(const std::string& file, const NamedTensors& tensors) {
    const auto path = scratch(file).string();
    write_file_atomic(path, safetensors_bytes(tensors));
    return path;
}

/// Every parameter and buffer of `module`, by name.
std::map<std::string, torch::Tensor> tensors_of(torch::nn::Module& module) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : module.named_parameters()) out[p.key()] = p.value();
    for (const auto& b : module.named_buffers()) out[b.key()] = b.value();
    return out;
}

/// A detector whose batch norms hold non-default statistics, so that a copy is visible.
Detector scrambled(Backbone backbone, std::uint64_t seed) {
    torch::manual_seed(seed);
    Detector d(tiny_options(backbone));
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : tensors_of(*d))
        if (t.is_floating_point()) t.copy_(torch::randn_like(t));
    return d;
}

TEST(Safetensors, RoundTripKeepsOrderDtypesShapesAndMetadata) {
    NamedTensors in;
    in.tensors = {{"z.first", torch::arange(6, torch::kFloat32).view({2, 3})},
                  {"a.second", torch::tensor({1, -2, 3}, torch::kInt64)},
                  {"m.half", torch::tensor({0.5, 1.5}).to(torch::kFloat16)},
                  {"scalar", torch::tensor(7, torch::kInt64)},
                  {"empty", torch::zeros({0, 4})}};
    in.metadata = {{"input_normalization", "imagenet"}, {"format", "pt"}};
    const std::string bytes = safetensors_bytes(in);
    const auto out = parse_safetensors(bytes, "mem.safetensors");
    ASSERT_EQ(out.tensors.size(), in.tensors.size());
    for (size_t i = 0; i < in.tensors.size(); ++i) {
        EXPECT_EQ(out.tensors[i].first, in.tensors[i].first) << "file order kept";
        EXPECT_EQ(out.tensors[i].second.scalar_type(), in.tensors[i].second.scalar_type());
        EXPECT_EQ(out.tensors[i].second.sizes(), in.tensors[i].second.sizes());
        EXPECT_TRUE(torch::equal(out.tensors[i].second, in.tensors[i].second))
            << in.tensors[i].first;
    }
    EXPECT_EQ(out.metadata, in.metadata);
}

TEST(Safetensors, BadFilesAreErrorsNamingFileAndTensor) {
    NamedTensors in;
    in.tensors = {{"w", torch::ones({4})}};
    std::string bytes = safetensors_bytes(in);
    auto expect_error = [](const std::string& b, const std::string& part) {
        try {
            parse_safetensors(b, "bad.safetensors");
            ADD_FAILURE() << "no error for " << part;
        } catch (const WeightsFileError& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("bad.safetensors"), std::string::npos) << what;
            EXPECT_NE(what.find(part), std::string::npos) << what;
        }
    };
    expect_error(bytes.substr(0, bytes.size() - 4), "'w'");  // data cut short
    std::string wrong_dtype = bytes;
    wrong_dtype.replace(wrong_dtype.find("F32"), 3, "F99");
    expect_error(wrong_dtype, "F99");
    std::string wrong_shape = bytes;
    wrong_shape.replace(wrong_shape.find("[4]"), 3, "[5]");
    expect_error(wrong_shape, "'w'");
    expect_error("PK\x03\x04 not json at all", "not a safetensors file");
}

TEST(PretrainedNames, TablesFollowTheReferences) {
    const auto b4 = Backbone::efficientnet_b4;
    EXPECT_EQ(reference_name(Naming::torchvision, b4, "stem.conv.weight", false),
              "features.0.0.weight");
    EXPECT_EQ(reference_name(Naming::torchvision, b4, "stem.bn.running_var", false),
              "features.0.1.running_var");
    EXPECT_EQ(reference_name(Naming::torchvision, b4, "stage2.0.expand.conv.weight", true),
              "features.2.0.block.0.0.weight");
    EXPECT_EQ(reference_name(Naming::torchvision, b4, "stage2.1.se.expand.bias", true),
              "features.2.1.block.2.fc2.bias");
    EXPECT_EQ(reference_name(Naming::torchvision, b4, "stage7.0.project.bn.weight", true),
              "features.7.0.block.3.1.weight");
    EXPECT_EQ(reference_name(Naming::torchvision, b4, "stage1.1.depthwise.conv.weight", false),
              "features.1.1.block.0.0.weight");
    EXPECT_EQ(reference_name(Naming::torchvision, b4, "stage1.0.project.bn.bias", false),
              "features.1.0.block.2.1.bias");

    EXPECT_EQ(reference_name(Naming::timm, b4, "stem.conv.weight", false), "conv_stem.weight");
    EXPECT_EQ(reference_name(Naming::timm, b4, "stem.bn.bias", false), "bn1.bias");
    EXPECT_EQ(reference_name(Naming::timm, b4, "stage2.0.expand.conv.weight", true),
              "blocks.1.0.conv_pw.weight");
    EXPECT_EQ(reference_name(Naming::timm, b4, "stage2.0.depthwise.bn.running_mean", true),
              "blocks.1.0.bn2.running_mean");
    EXPECT_EQ(reference_name(Naming::timm, b4, "stage6.3.project.conv.weight", true),
              "blocks.5.3.conv_pwl.weight");
    EXPECT_EQ(reference_name(Naming::timm, b4, "stage1.0.depthwise.bn.weight", false),
              "blocks.0.0.bn1.weight");
    EXPECT_EQ(reference_name(Naming::timm, b4, "stage1.0.project.conv.weight", false),
              "blocks.0.0.conv_pw.weight");
    EXPECT_EQ(reference_name(Naming::timm, b4, "stage1.1.se.reduce.weight", false),
              "blocks.0.1.se.conv_reduce.weight");

    const auto csp = Backbone::cspdarknet;
    EXPECT_EQ(reference_name(Naming::yolov5, csp, "stem.conv.weight", false),
              "model.0.conv.weight");
    EXPECT_EQ(reference_name(Naming::yolov5, csp, "stage1.0.bn.bias", false), "model.1.bn.bias");
    EXPECT_EQ(reference_name(Naming::yolov5, csp, "stage1.1.cv3.conv.weight", false),
              "model.2.cv3.conv.weight");
    EXPECT_EQ(
        reference_name(Naming::yolov5, csp, "stage3.1.bottlenecks.2.cv2.bn.running_var", false),
        "model.6.m.2.cv2.bn.running_var");
    EXPECT_EQ(reference_name(Naming::yolov5, csp, "stage4.0.conv.weight", false),
              "model.7.conv.weight");
    EXPECT_EQ(reference_name(Naming::yolov5, csp, "stage4.2.cv2.conv.weight", false),
              "model.9.cv2.conv.weight");
    // No cross-over: torchvision names do not describe the CSP backbone.
    EXPECT_EQ(reference_name(Naming::torchvision, csp, "stem.conv.weight", false), "");
}

struct NamingCase {
    Backbone backbone;
    Naming naming;
    InputNormalization normalization;
};

class PretrainedRoundTrip : public ::testing::TestWithParam<NamingCase> {};

TEST_P(PretrainedRoundTrip, ExportedBackboneLoadsIntoAFreshDetector) {
    const auto c = GetParam();
    Detector source = scrambled(c.backbone, 1);
    const std::string path = scratch(std::string(to_string(c.naming)) + ".safetensors").string();
    write_file_atomic(path, export_weights(*source, c.naming, /*backbone_only=*/true));

    Detector target = scrambled(c.backbone, 2);
    const auto file = read_weights_file(path);
    EXPECT_EQ(file.format, "safetensors");
    EXPECT_EQ(file.sha256.size(), 64u);
    const auto plan = plan_pretrained(*target, file);
    EXPECT_EQ(plan.naming, c.naming);
    EXPECT_TRUE(plan.complete()) << describe(plan);
    EXPECT_FALSE(plan.whole_detector);
    EXPECT_EQ(plan.load.size(), tensors_of(target->backbone_module()).size());
    EXPECT_EQ(plan.normalization, c.normalization);
    const auto neck_before = tensors_of(*target).at("neck.reduce_p5.conv.weight").clone();
    apply_pretrained(*target, plan, file, /*strict=*/true);
    EXPECT_EQ(target->input_normalization(), c.normalization);

    auto theirs = tensors_of(source->backbone_module());
    for (auto& [name, t] : tensors_of(target->backbone_module()))
        EXPECT_TRUE(torch::equal(t, theirs.at(name))) << name;
    // Only the backbone is loaded.
    EXPECT_TRUE(torch::equal(tensors_of(*target).at("neck.reduce_p5.conv.weight"), neck_before));
}

INSTANTIATE_TEST_SUITE_P(
    Namings, PretrainedRoundTrip,
    ::testing::Values(
        NamingCase{Backbone::efficientnet_b4, Naming::torchvision, InputNormalization::imagenet},
        NamingCase{Backbone::efficientnet_b4, Naming::timm, InputNormalization::imagenet},
        NamingCase{Backbone::efficientnet_b4, Naming::smartcash, InputNormalization::none},
        NamingCase{Backbone::cspdarknet, Naming::yolov5, InputNormalization::none},
        NamingCase{Backbone::cspdarknet, Naming::smartcash, InputNormalization::none}),
    [](const auto& info) {
        return std::string(smartcash::to_string(info.param.backbone)) + "_" +
               to_string(info.param.naming);
    });

TEST(Pretrained, WholeDetectorExportCarriesEveryTensorAndTheNormalization) {
    Detector source = scrambled(Backbone::efficientnet_b4, 3);
    source->set_input_normalization(InputNormalization::imagenet);
    const auto path = scratch("whole.safetensors").string();
    write_file_atomic(path, export_weights(*source, Naming::smartcash, /*backbone_only=*/false));
    Detector target = scrambled(Backbone::efficientnet_b4, 4);
    const auto file = read_weights_file(path);
    const auto plan = plan_pretrained(*target, file);
    EXPECT_TRUE(plan.whole_detector);
    EXPECT_TRUE(plan.complete()) << describe(plan);
    apply_pretrained(*target, plan, file, true);
    EXPECT_EQ(target->input_normalization(), InputNormalization::imagenet);
    auto theirs = tensors_of(*source);
    for (auto& [name, t] : tensors_of(*target))
        EXPECT_TRUE(torch::equal(t, theirs.at(name))) << name;
}

TEST(Pretrained, StrictLoadingNamesMissingUnexpectedAndWrongShapeTensors) {
    Detector source = scrambled(Backbone::efficientnet_b4, 5);
    auto named = parse_safetensors(export_weights(*source, Naming::torchvision, true), "x");
    // Drop one tensor, reshape another, add one nothing maps to, and one the reference has
    // outside its backbone (ignored).
    std::vector<std::pair<std::string, torch::Tensor>> edited;
    for (auto& [name, t] : named.tensors) {
        if (name == "features.2.0.block.0.0.weight") continue;
        if (name == "features.3.1.block.1.1.bias") t = torch::zeros({3});
        edited.emplace_back(name, t);
    }
    edited.emplace_back("features.9.weird", torch::zeros({1}));
    edited.emplace_back("classifier.1.weight", torch::zeros({10, 8}));
    named.tensors = edited;
    const auto path = write_named("edited.safetensors", named);

    Detector target = scrambled(Backbone::efficientnet_b4, 6);
    const auto file = read_weights_file(path);
    const auto plan = plan_pretrained(*target, file);
    EXPECT_EQ(plan.naming, Naming::torchvision);
    ASSERT_EQ(plan.missing.size(), 1u);
    EXPECT_NE(plan.missing[0].find("backbone.stage2.0.expand.conv.weight"), std::string::npos);
    ASSERT_EQ(plan.unexpected.size(), 1u);
    EXPECT_EQ(plan.unexpected[0], "features.9.weird");
    ASSERT_EQ(plan.wrong_shape.size(), 1u);
    EXPECT_NE(plan.wrong_shape[0].find("features.3.1.block.1.1.bias [3]"), std::string::npos)
        << plan.wrong_shape[0];
    EXPECT_EQ(plan.ignored, std::vector<std::string>{"classifier.1.weight"});

    const auto before = tensors_of(*target).at("backbone.stem.conv.weight").clone();
    try {
        apply_pretrained(*target, plan, file, /*strict=*/true);
        FAIL() << "strict loading accepted an incomplete file";
    } catch (const PretrainedError& e) {
        const std::string what = e.what();
        for (const char* part : {"edited.safetensors", "backbone.stage2.0.expand.conv.weight",
                                 "features.9.weird", "features.3.1.block.1.1.bias"})
            EXPECT_NE(what.find(part), std::string::npos) << part << " not in: " << what;
    }
    EXPECT_TRUE(torch::equal(tensors_of(*target).at("backbone.stem.conv.weight"), before))
        << "a refused file loads nothing";

    // Not strict: what fits loads, the rest stays as it was.
    const auto kept = tensors_of(*target).at("backbone.stage2.0.expand.conv.weight").clone();
    apply_pretrained(*target, plan, file, /*strict=*/false);
    EXPECT_TRUE(torch::equal(tensors_of(*target).at("backbone.stage2.0.expand.conv.weight"), kept));
    EXPECT_TRUE(torch::equal(tensors_of(*target).at("backbone.stem.conv.weight"),
                             tensors_of(*source).at("backbone.stem.conv.weight")));
}

TEST(Pretrained, TorchSaveArchivesAreRead) {
    Detector source = scrambled(Backbone::cspdarknet, 7);
    auto named = parse_safetensors(export_weights(*source, Naming::yolov5, true), "x");
    c10::Dict<std::string, at::Tensor> dict;
    for (const auto& [name, t] : named.tensors) dict.insert(name, t);
    const auto bytes = torch::pickle_save(c10::IValue(dict));
    const auto path = scratch("yolov5.pt").string();
    write_file_atomic(path, std::string(bytes.begin(), bytes.end()));

    Detector target = scrambled(Backbone::cspdarknet, 8);
    const auto file = read_weights_file(path);
    EXPECT_EQ(file.format, "torch.save");
    const auto plan = plan_pretrained(*target, file);
    EXPECT_EQ(plan.naming, Naming::yolov5);
    EXPECT_TRUE(plan.complete()) << describe(plan);
}

TEST(Pretrained, TruncatedFilesOnDiskAreErrorsNamingTheFile) {
    Detector source = scrambled(Backbone::cspdarknet, 9);
    const std::string st = export_weights(*source, Naming::yolov5, true);
    auto named = parse_safetensors(st, "x");
    c10::Dict<std::string, at::Tensor> dict;
    for (const auto& [name, t] : named.tensors) dict.insert(name, t);
    const auto pickled = torch::pickle_save(c10::IValue(dict));
    const std::string pt(pickled.begin(), pickled.end());
    for (const auto& [file, bytes] :
         {std::pair{std::string("cut.safetensors"), st}, std::pair{std::string("cut.pt"), pt}}) {
        const auto path = scratch(file).string();
        write_file_atomic(path, bytes);
        std::filesystem::resize_file(path, bytes.size() / 2);  // a download cut half way
        try {
            read_weights_file(path);
            ADD_FAILURE() << "no error for " << file;
        } catch (const WeightsFileError& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find(file), std::string::npos) << what;
        }
    }
}

TEST(Pretrained, FilesWithoutKnownNamesAreErrors) {
    NamedTensors named;
    named.tensors = {{"encoder.layer0.weight", torch::zeros({2})}};
    const auto path = write_named("foreign.safetensors", named);
    Detector target(tiny_options(Backbone::efficientnet_b4));
    try {
        plan_pretrained(*target, read_weights_file(path));
        FAIL() << "no error";
    } catch (const PretrainedError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("foreign.safetensors"), std::string::npos) << what;
        EXPECT_NE(what.find("encoder.layer0.weight"), std::string::npos) << what;
        EXPECT_NE(what.find("torchvision, timm"), std::string::npos) << what;
    }
    std::ofstream(scratch("junk.bin")) << "neither format";
    EXPECT_THROW(read_weights_file(scratch("junk.bin").string()), WeightsFileError);
}

TEST(Pretrained, ImagenetNormalizationIsAppliedBeforeTheBackbone) {
    Detector d(tiny_options(Backbone::cspdarknet));
    auto x = torch::full({1, 3, 64, 64}, 0.5);
    const auto normalized = [&] {
        d->set_input_normalization(InputNormalization::imagenet);
        return d->normalize(x);
    }();
    EXPECT_NEAR(normalized[0][0][0][0].item<double>(), (0.5 - 0.485) / 0.229, 1e-6);
    EXPECT_NEAR(normalized[0][2][5][7].item<double>(), (0.5 - 0.406) / 0.225, 1e-6);
    d->set_input_normalization(InputNormalization::none);
    EXPECT_TRUE(torch::equal(d->normalize(x), x));
}

TEST(Pretrained, EfficientNetBatchNormIsTheReferences) {
    Detector d(tiny_options(Backbone::efficientnet_b4));
    int checked = 0;
    for (auto& m : d->backbone_module().modules(false))
        if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
            EXPECT_DOUBLE_EQ(bn->options.eps(), 1e-5);
            EXPECT_DOUBLE_EQ(bn->options.momentum().value(), 0.1);
            ++checked;
        }
    EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace smartcash::model
