#include "worker/device/host_block_cache.hpp"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

namespace smartcash::train {

namespace {

constexpr std::size_t min_cached_size = std::size_t{256} << 10;
constexpr std::size_t alignment = 64;  // as LibTorch's own CPU allocator

/// std::bad_alloc (the fault contract's out-of-memory) that says how much was asked, as
/// LibTorch's own CPU allocator does.
class AllocationFailed final : public std::bad_alloc {
  public:
    explicit AllocationFailed(std::size_t n)
        : m_what("host block cache: can't allocate memory: you tried to allocate " +
                 std::to_string(n) + " bytes") {}
    const char* what() const noexcept override { return m_what.c_str(); }

  private:
    std::string m_what;
};

struct Freed {
    void* data;
    std::size_t size;
};

class HostBlockCache final : public c10::Allocator {
  public:
    HostBlockCache() = default;

    // LibTorch 1.13 to 2.2 declare allocate() const, later versions non-const: both are defined
    // (without `override`), so whichever the headers declare is the one overridden.
    c10::DataPtr allocate(std::size_t n) const { return allocate_block(n); }
    c10::DataPtr allocate(std::size_t n) { return allocate_block(n); }
    // Pure virtual in newer LibTorch; a plain member function in older ones.
    void copy_data(void* dest, const void* src, std::size_t count) const {
        if (count > 0) std::memcpy(dest, src, count);
    }

    void set_cap(std::size_t cap) {
        std::vector<Freed> out;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_stats.cap = cap;
            take_over_cap(&out);
        }
        unmap(out);
    }

    void release_all() {
        std::vector<Freed> out;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            for (auto& [size, blocks] : m_free)
                for (void* b : blocks) out.push_back({b, size});
            m_free.clear();
            m_stats.cached = 0;
        }
        unmap(out);
    }

    HostBlockCacheStats stats() const {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_stats;
    }

  private:
    // LibTorch's raw_allocate()/raw_deallocate() (used inside some kernels) need the context to
    // be the data pointer and one deleter for every allocation: small blocks carry it too.
    c10::DeleterFnPtr raw_deleter() const override { return &HostBlockCache::free_pointer; }

    c10::DataPtr allocate_block(std::size_t n) const {
        const c10::Device cpu(c10::DeviceType::CPU);
        if (n < min_cached_size) {
            void* data = nullptr;
            if (n > 0 && ::posix_memalign(&data, alignment, n) != 0) throw AllocationFailed(n);
            return {data, data, &HostBlockCache::free_pointer, cpu};
        }
        auto* self = const_cast<HostBlockCache*>(this);  // the cache is shared, behind its mutex
        void* data = self->take(host_block_class(n));
        return {data, data, &HostBlockCache::free_pointer, cpu};
    }

    void* take(std::size_t size) {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            auto it = m_free.find(size);
            if (it != m_free.end() && !it->second.empty()) {
                void* data = it->second.back();
                it->second.pop_back();
                m_stats.cached -= size;
                m_stats.live += size;
                ++m_stats.hits;
                m_live.emplace(data, size);
                return data;
            }
        }
        void* data = map(size);
        if (!data) {
            release_all();  // the system refused: what is cached is the first to give back
            data = map(size);
        }
        if (!data) throw AllocationFailed(size);
        std::lock_guard<std::mutex> lock(m_mutex);
        m_stats.live += size;
        ++m_stats.maps;
        m_live.emplace(data, size);
        return data;
    }

    static void free_pointer(void* data) { instance()->give_back(data); }

    void give_back(void* data) {
        std::size_t size = 0;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            auto it = m_live.find(data);
            if (it != m_live.end()) {
                size = it->second;
                m_live.erase(it);
                m_stats.live -= size;
                if (m_stats.cached + size <= m_stats.cap) {
                    m_free[size].push_back(data);
                    m_stats.cached += size;
                    return;
                }
                ++m_stats.unmaps;
            }
        }
        if (size == 0)
            std::free(data);  // a small block (or null)
        else
            ::munmap(data, size);
    }

    // Under the mutex: moves free blocks out of the cache until it holds at most its cap, the
    // largest first.
    void take_over_cap(std::vector<Freed>* out) {
        for (auto it = m_free.rbegin(); it != m_free.rend() && m_stats.cached > m_stats.cap; ++it) {
            while (!it->second.empty() && m_stats.cached > m_stats.cap) {
                out->push_back({it->second.back(), it->first});
                it->second.pop_back();
                m_stats.cached -= it->first;
                ++m_stats.unmaps;
            }
        }
    }

    static void* map(std::size_t size) {
#if defined(MADV_HUGEPAGE)
        // Linux: a large block starts on a 2 MiB boundary and asks for transparent huge pages
        // (where the system offers them on request), so it faults in 2 MiB at a time, not 4 KiB.
        constexpr std::size_t huge = std::size_t{2} << 20;
        if (size >= huge) {
            void* p = ::mmap(nullptr, size + huge, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) return nullptr;
            const auto start = reinterpret_cast<std::uintptr_t>(p);
            const std::uintptr_t aligned = (start + huge - 1) / huge * huge;
            if (aligned > start) ::munmap(p, aligned - start);
            const std::uintptr_t end = aligned + size;
            if (start + size + huge > end)
                ::munmap(reinterpret_cast<void*>(end), start + size + huge - end);
            ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);
            return reinterpret_cast<void*>(aligned);
        }
#endif
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? nullptr : p;
    }

    static void unmap(const std::vector<Freed>& blocks) {
        for (const Freed& b : blocks) ::munmap(b.data, b.size);
    }

  public:
    static HostBlockCache*& instance() {
        static HostBlockCache* the_cache = nullptr;
        return the_cache;
    }

  private:
    mutable std::mutex m_mutex;
    std::map<std::size_t, std::vector<void*>> m_free;  ///< class size -> free blocks
    std::unordered_map<void*, std::size_t> m_live;     ///< large blocks handed out -> class size
    HostBlockCacheStats m_stats;
};

std::mutex install_mutex;

}  // namespace

std::size_t host_block_class(std::size_t n) {
    constexpr std::size_t small_step = std::size_t{64} << 10;
    if (n <= (std::size_t{1} << 20)) return (n + small_step - 1) / small_step * small_step;
    std::size_t power = std::size_t{1} << 20;
    while (power <= n / 2) power <<= 1;
    const std::size_t step = power / 8;
    return (n + step - 1) / step * step;
}

void install_host_block_cache(std::size_t cap) {
    std::lock_guard<std::mutex> lock(install_mutex);
    auto*& cache = HostBlockCache::instance();
    if (!cache) {
        // Lives for the whole process: tensors may be freed during static destruction.
        cache = new HostBlockCache();
        cache->set_cap(cap);
        c10::SetCPUAllocator(cache, /*priority=*/100);
        return;
    }
    cache->set_cap(cap);
}

void release_host_block_cache() {
    if (auto* cache = HostBlockCache::instance()) cache->release_all();
}

HostBlockCacheStats host_block_cache_stats() {
    auto* cache = HostBlockCache::instance();
    if (!cache) return {};
    HostBlockCacheStats s = cache->stats();
    s.installed = true;
    return s;
}

}  // namespace smartcash::train
