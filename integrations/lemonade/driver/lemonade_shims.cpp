// lemonade_shims.cpp: the two lemonade symbols the driver needs besides lemonade's own
// model_registry.cpp and json_utils.cpp, which check.sh compiles from the patched lemonade copy.
//
// - HttpClient::get: lemonade's real one (utils/http_client.cpp) enforces https for registry
//   calls, and the mock hub is plain http on 127.0.0.1; it also needs lemonade's pinned
//   mbedtls/curl build. This one is a plain libcurl GET with the same contract as the real one
//   for the calls the registry makes: status and body returned, transport errors thrown as
//   std::runtime_error("CURL error: ..."), the User-Agent lemonade sends, at most 5 redirects.
// - path_from_utf8: used by json_utils.cpp; the real one lives in path_utils.cpp with lemonade's
//   platform layer.

#include <lemon/utils/http_client.h>
#include <lemon/utils/path_utils.h>

#include <curl/curl.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace lemon {
namespace utils {

std::atomic<long> HttpClient::default_timeout_seconds_{300};

namespace {

size_t append_body(char* data, size_t size, size_t count, void* user) {
    static_cast<std::string*>(user)->append(data, size * count);
    return size * count;
}

}  // namespace

HttpResponse HttpClient::get(const std::string& url,
                             const std::map<std::string, std::string>& headers,
                             long timeout_seconds,
                             HttpSecurityPolicy /*policy: the mock hub is http on loopback*/) {
    CURL* curl = curl_easy_init();
    if (!curl) throw std::runtime_error("Failed to initialize CURL");
    HttpResponse response;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT,
                     timeout_seconds > 0 ? timeout_seconds : default_timeout_seconds_.load());
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "lemon.cpp/1.0");
    curl_slist* list = nullptr;
    for (const auto& [name, value] : headers) {
        list = curl_slist_append(list, (name + ": " + value).c_str());
    }
    if (list) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    const CURLcode res = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    if (res != CURLE_OK) {
        throw std::runtime_error("CURL error: " + std::string(curl_easy_strerror(res)));
    }
    response.status_code = static_cast<int>(code);
    return response;
}

std::filesystem::path path_from_utf8(const std::string& path) {
    return std::filesystem::u8path(path);
}

}  // namespace utils
}  // namespace lemon
