// Reference for MicroExpr.Data.Faces.ShapePredictor: dlib's own 68-point shape predictor on given 8-bit grey images
// and given face rectangles. Not part of the .NET build; built against Debian's libdlib-dev by build-and-run.sh.
//
//   dlib_landmarks_ref MODEL CASES      CASES: lines "name file.pgm left top right bottom" (dlib's inclusive corners)
//       prints, per case, 68 lines "name i x y" (the cascade's final shape mapped to the image, in double,
//       17 significant digits) and checks that rounding them gives exactly the points dlib's shape_predictor returns.
//   dlib_landmarks_ref --detect FILE...  (pgm, png or jpg) prints "file left top right bottom" for each face
//       dlib's HOG frontal face detector finds: the kind of box the model was trained on; then "file up2 ..." for
//       the faces found on the image upsampled twice (pyramid_up), mapped back to the image.
//
// dlib's shape_predictor::operator() returns integer points (full_object_detection stores dlib::point), so the
// sub-pixel shape is computed here with the same loop as shape_predictor.h (dlib 19.24) over the same members,
// deserialised with dlib's own code in the order shape_predictor's deserialize reads them.

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_io.h>
#include <dlib/revision.h>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace dlib;

namespace
{
    // Binary PGM (P5, maxval 255) into an 8-bit image, row-major; comments allowed in the header.
    void read_pgm(const std::string& path, array2d<unsigned char>& img)
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw std::runtime_error("cannot open " + path);
        auto token = [&]() {
            std::string t;
            int ch;
            while ((ch = in.get()) != EOF)
            {
                if (ch == '#') { while ((ch = in.get()) != EOF && ch != '\n') {} continue; }
                if (std::isspace(ch)) { if (!t.empty()) break; continue; }
                t.push_back(static_cast<char>(ch));
            }
            return t;
        };
        if (token() != "P5") throw std::runtime_error(path + ": not a binary PGM (P5)");
        long w = std::stol(token()), h = std::stol(token()), maxval = std::stol(token());
        if (maxval != 255) throw std::runtime_error(path + ": maxval must be 255");
        img.set_size(h, w);
        for (long r = 0; r < h; ++r)
            if (!in.read(reinterpret_cast<char*>(&img[r][0]), w)) throw std::runtime_error(path + ": truncated pixels");
    }

    struct model
    {
        matrix<float,0,1> initial_shape;
        std::vector<std::vector<impl::regression_tree>> forests;
        std::vector<std::vector<unsigned long>> anchor_idx;
        std::vector<std::vector<dlib::vector<float,2>>> deltas;
    };

    // shape_predictor::operator() of dlib 19.24, returning the sub-pixel points.
    std::vector<dpoint> predict(const model& m, const array2d<unsigned char>& img, const rectangle& rect)
    {
        matrix<float,0,1> current_shape = m.initial_shape;
        std::vector<float> feature_pixel_values;
        for (unsigned long iter = 0; iter < m.forests.size(); ++iter)
        {
            impl::extract_feature_pixel_values(img, rect, current_shape, m.initial_shape,
                                               m.anchor_idx[iter], m.deltas[iter], feature_pixel_values);
            unsigned long leaf_idx;
            for (unsigned long i = 0; i < m.forests[iter].size(); ++i)
                current_shape += m.forests[iter][i](feature_pixel_values, leaf_idx);
        }
        const point_transform_affine tform_to_img = impl::unnormalizing_tform(rect);
        std::vector<dpoint> parts(current_shape.size() / 2);
        for (unsigned long i = 0; i < parts.size(); ++i)
            parts[i] = tform_to_img(impl::location(current_shape, i));
        return parts;
    }

    int run_cases(const std::string& model_path, const std::string& cases_path)
    {
        shape_predictor sp;
        deserialize(model_path) >> sp;
        model m;
        {
            std::ifstream in(model_path, std::ios::binary);
            int version = 0;
            deserialize(version, in);
            if (version != 1) throw std::runtime_error("unexpected shape_predictor version");
            deserialize(m.initial_shape, in);
            deserialize(m.forests, in);
            deserialize(m.anchor_idx, in);
            deserialize(m.deltas, in);
        }
        std::ifstream cases(cases_path);
        if (!cases) throw std::runtime_error("cannot open " + cases_path);
        std::string line;
        std::printf("# dlib %d.%d.%d shape_predictor, model %s\n", DLIB_MAJOR_VERSION, DLIB_MINOR_VERSION, DLIB_PATCH_VERSION, model_path.c_str());
        while (std::getline(cases, line))
        {
            if (line.empty() || line[0] == '#') continue;
            std::istringstream ls(line);
            std::string name, file;
            long l, t, r, b;
            if (!(ls >> name >> file >> l >> t >> r >> b)) throw std::runtime_error("bad case line: " + line);
            array2d<unsigned char> img;
            read_pgm(file, img);
            const rectangle rect(l, t, r, b);
            const auto parts = predict(m, img, rect);
            const full_object_detection det = sp(img, rect);
            if (det.num_parts() != parts.size()) throw std::runtime_error("part count differs");
            std::printf("# case %s %ldx%ld rect %ld %ld %ld %ld\n", name.c_str(), img.nc(), img.nr(), l, t, r, b);
            for (unsigned long i = 0; i < parts.size(); ++i)
            {
                if (point(parts[i]) != det.part(i))
                {
                    std::fprintf(stderr, "case %s point %lu: rounded %ld %ld but dlib says %ld %ld\n", name.c_str(), i,
                                 point(parts[i]).x(), point(parts[i]).y(), det.part(i).x(), det.part(i).y());
                    return 1;
                }
                std::printf("%s %lu %.17g %.17g\n", name.c_str(), i, parts[i].x(), parts[i].y());
            }
        }
        return 0;
    }

    int run_detect(int argc, char** argv)
    {
        frontal_face_detector detector = get_frontal_face_detector();
        for (int i = 2; i < argc; ++i)
        {
            const std::string path = argv[i];
            array2d<unsigned char> img;
            if (path.size() > 4 && path.substr(path.size() - 4) == ".pgm") read_pgm(path, img);
            else load_image(img, path);
            for (const rectangle& r : detector(img))
                std::printf("%s %ld %ld %ld %ld\n", path.c_str(), r.left(), r.top(), r.right(), r.bottom());
            // Faces under dlib's 80x80 window: once more on the image doubled, boxes mapped back (as dlib's examples do).
            array2d<unsigned char> up;
            pyramid_up(img, up, pyramid_down<2>());
            for (const rectangle& r : detector(up))
            {
                const drectangle d(r.left() / 2.0, r.top() / 2.0, r.right() / 2.0, r.bottom() / 2.0);
                std::printf("%s up2 %.2f %.2f %.2f %.2f\n", path.c_str(), d.left(), d.top(), d.right(), d.bottom());
            }
        }
        return 0;
    }
}

int main(int argc, char** argv)
{
    try
    {
        if (argc >= 3 && std::string(argv[1]) == "--detect") return run_detect(argc, argv);
        if (argc != 3)
        {
            std::fprintf(stderr, "usage: %s MODEL CASES | --detect IMAGE...\n", argv[0]);
            return 2;
        }
        return run_cases(argv[1], argv[2]);
    }
    catch (const std::exception& e)
    {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
