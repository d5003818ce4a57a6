// fingerprint_vectors.cpp: test vectors for ModelScope snapshot folder names, computed by
// lemonade's own code, so lemon-pull's implementation can be compared with it byte for byte.
//
// check.sh extracts, without retyping, these definitions from lemonade's
// src/cpp/server/model_registry.cpp:
//   lemonade_fingerprint.inc: fnv1a64, safe_revision_component, tree_snapshot_id (from its
//     anonymous namespace) and registry_tree_snapshot_id, compiled here in lemon::extracted;
//   lemonade_source_name.inc: remote_registry_source_name, compiled in namespace lemon. ModelScopeRegistry::fetch_repository
// names a snapshot registry_tree_snapshot_id(source(), revision, result.files) over every listed
// entry, folders included, which is what each vector calls.
//
// Prints JSON (tests/fixtures/modelscope_fingerprints.json): per vector the revision, the entries
// (path, size, is_directory, algorithm, hash) in listing order, and the folder name lemonade
// gives that listing. Build: see check.sh (needs nlohmann-json3-dev).

#include <lemon/model_registry.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace lemon {
// remote_registry_source_name defines the function model_registry.h declares (argument-dependent
// lookup finds that one from inside extracted::registry_tree_snapshot_id anyway).
#include "lemonade_source_name.inc"
namespace extracted {
#include "lemonade_fingerprint.inc"
}  // namespace extracted
}  // namespace lemon

namespace {

using lemon::RegistryFile;

struct Vector {
    std::string name;
    std::string revision;
    std::vector<RegistryFile> entries;
};

RegistryFile file(const std::string& path, std::uint64_t size, const std::string& sha256) {
    RegistryFile f;
    f.path = path;
    f.size = size;
    f.hash = sha256;
    // As ModelScopeRegistry::fetch_repository: the algorithm is set only when a hash is listed.
    if (!sha256.empty()) f.hash_algorithm = "sha256";
    return f;
}

RegistryFile folder(const std::string& path) {
    RegistryFile f;
    f.path = path;
    f.directory = true;
    return f;
}

const std::string kShaA = "0f343b0931126a20f133d67c2b018a3b5e6f8a4c3b2a1908172635445362718a";
const std::string kShaB = "9b74c9897bac770ffc029102a200c5de4f2b6d1e0e1f2a3b4c5d6e7f8091a2b3";
const std::string kShaC = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string kShaUpper = "0F343B0931126A20F133D67C2B018A3B5E6F8A4C3B2A1908172635445362718A";

std::vector<Vector> vectors() {
    const std::vector<RegistryFile> nested = {
        file("README.md", 1234, kShaB),
        folder("weights"),
        file("weights/model-Q4_K_M.gguf", 104857600, kShaA),
        folder("weights/extra"),
        file("weights/extra/notes.txt", 7, ""),
        file("config.json", 512, kShaC),
    };
    std::vector<RegistryFile> nested_shuffled = nested;
    std::reverse(nested_shuffled.begin(), nested_shuffled.end());

    return {
        {"one file", "master", {file("model-Q4_K_M.gguf", 1048576, kShaA)}},
        {"folders included, listing order", "master", nested},
        {"folders included, reversed listing (same name)", "master", nested_shuffled},
        {"folder entries only", "master", {folder("a"), folder("a/b")}},
        {"empty listing", "master", {}},
        {"no sha256 (size only)", "master", {file("config.json", 1234, ""), file("tokenizer.json", 0, "")}},
        {"uppercase sha256 is hashed as listed", "master", {file("model-Q4_K_M.gguf", 1048576, kShaUpper)}},
        {"unicode paths (byte order sort)", "master",
         {file("模型/权重-Q4_K_M.gguf", 123456789, kShaA), file("café.txt", 5, kShaB),
          file("Zeta.txt", 3, kShaC), file("alpha.txt", 3, kShaC)}},
        {"size above 4 GiB", "master", {file("big.gguf", 5368709120ull, kShaA)}},
        {"revision with slashes", "release/v1.0", {file("model.gguf", 42, kShaA)}},
        {"revision with dots, underscore and hyphen", "v1.0_beta-2", {file("model.gguf", 42, kShaA)}},
        {"revision longer than 48 characters", std::string(30, 'a') + "/" + std::string(30, 'b'),
         {file("model.gguf", 42, kShaA)}},
        {"non-ASCII revision", "修订版", {file("model.gguf", 42, kShaA)}},
        {"empty revision", "", {file("model.gguf", 42, kShaA)}},
        {"commit-like revision", "3f2c1a9e8d7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a", {file("model.gguf", 42, kShaA)}},
    };
}

}  // namespace

int main() {
    nlohmann::json out;
    out["generator"] =
        "integrations/lemonade/fingerprint_vectors.cpp over lemonade e385039 "
        "src/cpp/server/model_registry.cpp (registry_tree_snapshot_id), built by "
        "integrations/lemonade/check.sh";
    out["function"] = "registry_tree_snapshot_id(RemoteRegistrySource::ModelScope, revision, entries)";
    out["vectors"] = nlohmann::json::array();
    for (const auto& v : vectors()) {
        nlohmann::json entries = nlohmann::json::array();
        for (const auto& e : v.entries) {
            entries.push_back({{"path", e.path},
                               {"size", e.size},
                               {"is_directory", e.directory},
                               {"algorithm", e.hash_algorithm},
                               {"hash", e.hash}});
        }
        out["vectors"].push_back(
            {{"name", v.name},
             {"revision", v.revision},
             {"entries", entries},
             {"snapshot_id", lemon::extracted::registry_tree_snapshot_id(
                                 lemon::RemoteRegistrySource::ModelScope, v.revision, v.entries)}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
}
