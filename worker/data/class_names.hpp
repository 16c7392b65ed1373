// Dataset classes to model classes by name: an export may list the 17 SmartCash names in any
// order, and its label files use its own order.
#pragma once

#include <string>
#include <vector>

namespace smartcash::data {

/// For each class id of an export (index into `export_names`), the model's class id of the same
/// name (index into `model_names`). Names are compared exactly, after trimming surrounding
/// whitespace. Throws DataError at `file`:`line` when an export name is not a model class, a
/// model class is absent, or a name repeats; the message lists the export's names and the
/// model's.
std::vector<int> map_class_names(const std::vector<std::string>& export_names,
                                 const std::vector<std::string>& model_names,
                                 const std::string& file, int line);

/// True when the mapping sends every id to itself.
bool is_identity(const std::vector<int>& mapping);

}  // namespace smartcash::data
